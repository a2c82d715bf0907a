"""The review as a person reads it (a Markdown checklist) and as a script reads it (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from morris_mlx.review.flag import KIND_TITLES, KINDS, Flag, counts, line_col

HEADING = "## Review checklist"
_NOUNS = {
    "quote": ("quote", "quotes"),
    "number": ("number", "numbers"),
    "date": ("date", "dates"),
    "name": ("name", "names"),
    "claim": ("claim", "claims"),
    "copied": ("copied span", "copied spans"),
    "term": ("listed term", "listed terms"),
}


def summary(flags: Sequence[Flag]) -> str:
    found = counts(list(flags))
    parts = [f"{n} {_NOUNS[k][n != 1]}" for k, n in found.items() if n]
    if not parts:
        return "Nothing flagged: no quotes, figures, dates, names, claims or copied text found."
    total = len(flags)
    return f"{total} item{'s' if total != 1 else ''} to check before publishing: {', '.join(parts)}."


def _snippet(text: str, limit: int = 160) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1].rstrip() + "…"


def to_markdown(
    flags: Sequence[Flag],
    text: str,
    ticked: Sequence[bool] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
    heading: str = HEADING,
) -> str:
    """A Markdown checklist, one `- [ ]` item per flag (`- [x]` where `ticked`), grouped by kind, each
    with its line:column in `text`."""
    lines = [heading + (f": {title}" if title else ""), "", summary(flags)]
    if flags:
        lines[-1] += " Tick each item once checked."
    ticks = list(ticked) if ticked is not None else [False] * len(flags)
    for kind in KINDS:
        items = [(f, t) for f, t in zip(flags, ticks, strict=True) if f.kind == kind]
        if not items:
            continue
        lines += ["", f"### {KIND_TITLES[kind]}", ""]
        for flag, done in items:
            line, col = line_col(text, flag.start)
            box = "x" if done else " "
            lines.append(f"- [{box}] {line}:{col} {_snippet(flag.text)} ({flag.detail})")
    if notes:
        lines += [""] + [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def to_json(flags: Sequence[Flag], text: str) -> dict[str, Any]:
    """{"needs_review", "counts", "flags": [{kind, text, start, end, line, column, detail}]}."""
    items = []
    for flag in flags:
        line, col = line_col(text, flag.start)
        items.append({**flag.to_json(), "line": line, "column": col})
    return {"needs_review": bool(flags), "counts": counts(list(flags)), "flags": items}
