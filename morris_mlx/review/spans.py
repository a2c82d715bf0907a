"""Helpers shared by the regex checks: overlap tests and longest-match-wins merging."""

from __future__ import annotations

from collections.abc import Iterable


def overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def longest_first(matches: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, label) matches: where two overlap the longer (then earlier) one wins."""
    kept: list[tuple[int, int, str]] = []
    for start, end, label in sorted(matches, key=lambda m: (-(m[1] - m[0]), m[0])):
        if not overlaps(start, end, ((s, e) for s, e, _ in kept)):
            kept.append((start, end, label))
    return sorted(kept)
