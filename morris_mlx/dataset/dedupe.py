"""Exact and near-duplicate removal. The first copy in input order is kept.

Exact: same URL/id, or the same words once case and punctuation are ignored. Near: Jaccard similarity of
word 5-gram shingles at or above a threshold (a re-published piece with a changed intro, say). Candidate
pairs come from an inverted index over shingles, so the cost follows the overlap, not all pairs.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict

from morris_mlx.dataset.article import Article
from morris_mlx.dataset.clean import words

SHINGLE_WORDS = 5
NEAR_DUPLICATE_JACCARD = 0.8


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[int]:
    tokens = [w.casefold() for w in words(text)]
    if len(tokens) < size:
        return {_hash(" ".join(tokens))} if tokens else set()
    return {_hash(" ".join(tokens[i : i + size])) for i in range(len(tokens) - size + 1)}


def _hash(text: str) -> int:
    # A stable hash (Python's own is salted per process) keeps the result the same on every run.
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def dedupe(
    articles: list[Article], threshold: float = NEAR_DUPLICATE_JACCARD
) -> tuple[list[Article], list[tuple[Article, str, Article]]]:
    """(kept articles, [(dropped, "duplicate" | "near_duplicate", the copy it duplicates)])."""
    kept: list[Article] = []
    dropped: list[tuple[Article, str, Article]] = []
    by_id: dict[str, Article] = {}
    by_text: dict[str, Article] = {}
    kept_shingles: list[set[int]] = []
    index: dict[int, list[int]] = defaultdict(list)
    for article in articles:
        key = " ".join(w.casefold() for w in words(article.body))
        original = by_id.get(article.id) or by_text.get(key)
        if original is not None:
            dropped.append((article, "duplicate", original))
            continue
        sh = shingles(article.body)
        overlaps = Counter(j for s in sh for j in index.get(s, ()))
        near = next(
            (
                j
                for j, shared in sorted(overlaps.items())
                if shared / (len(sh) + len(kept_shingles[j]) - shared) >= threshold
            ),
            None,
        )
        if near is not None:
            dropped.append((article, "near_duplicate", kept[near]))
            continue
        position = len(kept)
        kept.append(article)
        kept_shingles.append(sh)
        by_id[article.id] = article
        by_text[key] = article
        for s in sh:
            index[s].append(position)
    return kept, dropped
