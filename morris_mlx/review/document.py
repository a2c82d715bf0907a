"""The part of a file that is the article: front matter, the attribution footer and an appended review
checklist are ours, not the writer's, and are never flagged."""

from __future__ import annotations

import re

# The footer `morris tui` and `morris generate --review` write: a rule, then the attribution line.
_FOOTER = re.compile(r"^\s*-{3,}\s*\n+\s*\*?AI-generated in the style of ", re.MULTILINE)
_CHECKLIST = re.compile(r"^#{1,3} Review checklist\b", re.MULTILINE)
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.DOTALL)


def article_region(text: str) -> tuple[int, int]:
    """(start, end) of the article inside `text`: after any front matter, before our footer/checklist."""
    start = 0
    front = _FRONT_MATTER.match(text)
    if front and ":" in front.group(0):
        start = front.end()
    end = len(text)
    for pattern in (_FOOTER, _CHECKLIST):
        found = pattern.search(text, start)
        if found:
            end = min(end, found.start())
    return start, end
