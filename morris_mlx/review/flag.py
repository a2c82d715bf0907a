"""What the review finds: one `Flag` per span a person must check, with where it is and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# In the order a checklist lists them: what most often sinks a published piece first.
KINDS = ("quote", "number", "date", "name", "claim", "copied", "term")

KIND_TITLES = {
    "quote": "Quotes (who said it, and did they?)",
    "number": "Numbers, money and percentages",
    "date": "Dates",
    "name": "Named people and organisations",
    "claim": "Statements of fact about a named party",
    "copied": "Text copied from the training corpus",
    "term": "Terms from your do-not-publish list",
}


@dataclass(frozen=True)
class Flag:
    """A span of the article to check: `text` is `article[start:end]` (character offsets)."""

    kind: str  # one of KINDS
    text: str
    start: int
    end: int
    detail: str = ""  # why it is flagged, or what to check (who a quote is attributed to, ...)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Flag:
        return cls(
            kind=str(record["kind"]),
            text=str(record["text"]),
            start=int(record["start"]),
            end=int(record["end"]),
            detail=str(record.get("detail") or ""),
        )


def sort_flags(flags: list[Flag]) -> list[Flag]:
    """By kind (in KINDS order), then by position: the order of the checklist."""
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(flags, key=lambda f: (order.get(f.kind, len(KINDS)), f.start, f.end))


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset, as editors show them."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def counts(flags: list[Flag]) -> dict[str, int]:
    found = {kind: 0 for kind in KINDS}
    for flag in flags:
        found[flag.kind] = found.get(flag.kind, 0) + 1
    return found
