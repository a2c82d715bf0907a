"""Bylines: clean them for the output and decide whether they name the writer we want."""

from __future__ import annotations

import re
import unicodedata

_BY_PREFIX = re.compile(r"^\s*(?:written\s+|posted\s+|words\s+)?by[:\s]+", re.I)
_SPLIT = re.compile(r"\s*(?:,|;|\||&|\band\b|\bwith\b|\n)\s*", re.I)
# Job titles and dates that sites print next to the name; they are not authors.
_NOT_A_NAME = re.compile(
    r"\b(editor|reporter|correspondent|analyst|contributor|contributing|staff|writer|columnist|senior|"
    r"principal|director|chief|head|follow|twitter|linkedin|updated|published|min read|\d{4})\b",
    re.I,
)


def name_tokens(text: str) -> list[str]:
    """Lowercase ASCII word tokens: 'Iáin  MORRIS' -> ['iain', 'morris']."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.findall(r"[a-z0-9]+", ascii_text)


def clean_byline(text: str) -> str:
    """'By Iain Morris, International Editor | @iainmorris' -> 'Iain Morris'; names kept, roles dropped."""
    text = _BY_PREFIX.sub("", " ".join(text.split()))
    names = []
    for part in _SPLIT.split(text):
        part = _BY_PREFIX.sub("", part).strip(" .-–—:")
        if part and not _NOT_A_NAME.search(part) and len(name_tokens(part)) <= 5 and part not in names:
            names.append(part)
    return ", ".join(names)


def author_matches(wanted: str, byline: str) -> bool:
    """True when every word of `wanted`, in order and adjacent, appears in `byline`.

    Word-level matching keeps 'Iain Morris' from matching 'Iain Morrison' while still matching
    'By Iain Morris and Kelsey Ziser'.
    """
    want = name_tokens(wanted)
    have = name_tokens(byline)
    if not want:
        return False
    return any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))
