"""How well the review finds what a person annotated: recall and precision per kind of flag.

A found flag matches an annotated span of the same kind when the two overlap: the checks mark a span
for a person to look at, so "€2bn" found where "cut €2bn" was annotated is a hit, not a miss.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from morris_mlx.review.flag import KINDS, Flag


@dataclass
class Score:
    expected: int = 0  # annotated spans
    found: int = 0  # annotated spans that some flag overlaps (recall's numerator)
    flagged: int = 0  # flags raised
    correct: int = 0  # flags that overlap some annotated span (precision's numerator)

    @property
    def recall(self) -> float | None:
        return self.found / self.expected if self.expected else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.flagged if self.flagged else None

    def add(self, other: Score) -> None:
        self.expected += other.expected
        self.found += other.found
        self.flagged += other.flagged
        self.correct += other.correct


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(expected: Iterable[tuple[str, int, int]], flags: Iterable[Flag]) -> dict[str, Score]:
    """Per kind, for one article: `expected` holds (kind, start, end) of the annotated spans."""
    wanted = list(expected)
    raised = list(flags)
    scores = {}
    for kind in KINDS:
        gold = [(s, e) for k, s, e in wanted if k == kind]
        got = [(f.start, f.end) for f in raised if f.kind == kind]
        scores[kind] = Score(
            expected=len(gold),
            found=sum(any(_overlap(g, f) for f in got) for g in gold),
            flagged=len(got),
            correct=sum(any(_overlap(f, g) for g in gold) for f in got),
        )
    return scores


def table(scores: dict[str, Score]) -> str:
    """A Markdown table of recall and precision per kind."""
    lines = ["| kind | annotated | found | recall | flagged | right | precision |", "|---|---|---|---|---|---|---|"]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for kind, s in scores.items():
        lines.append(
            f"| {kind} | {s.expected} | {s.found} | {pct(s.recall)} | {s.flagged} | {s.correct} | {pct(s.precision)} |"
        )
    return "\n".join(lines)
