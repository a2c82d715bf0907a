"""Checks that keep a looping or parroting model from scoring well on style alone.

- distinct-n (Li et al., 2016): unique word n-grams over all word n-grams of a text; a loop drives it down.
- repeated n-gram share: the share of a text's n-gram occurrences that repeat an earlier one in the same text.
- longest shared span: the longest run of words a text shares verbatim with any training article; a model
  that recites its training data shows long spans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from morris_mlx.evaluation.text import words


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(text: str, n: int) -> float:
    """Unique n-grams / n-grams; 0.0 for a text too short to have any."""
    grams = ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of n-gram occurrences that repeat an earlier one: 0 for no repetition, near 1 for a loop."""
    grams = ngrams(words(text), n)
    if not grams:
        return 0.0
    return sum(c - 1 for c in Counter(grams).values()) / len(grams)


@dataclass
class SharedSpan:
    length: int  # in words
    text: str
    document: int | None  # index of the corpus document it came from


class SpanIndex:
    """Finds the longest word span a text shares with any corpus document.

    Words become integer ids and every k-word window a polynomial hash (numpy uint64, wrapping), so one
    probe of length k is a vectorised set test; hash hits are confirmed word by word. Binary search on k
    works because sharing a span of k words implies sharing one of k - 1.
    """

    _BASE = np.uint64(1_000_003)

    def __init__(self, documents: Sequence[str]) -> None:
        self.vocab: dict[str, int] = {}
        ids: list[int] = []
        self.doc_of: list[int] = []
        self.longest_doc = 0
        for doc_id, doc in enumerate(documents):
            tokens = words(doc)
            self.longest_doc = max(self.longest_doc, len(tokens))
            ids.extend(self.vocab.setdefault(t, len(self.vocab) + 1) for t in tokens)
            self.doc_of.extend([doc_id] * len(tokens))
            ids.append(0)  # a boundary no text word maps to, so no span crosses two documents
            self.doc_of.append(-1)
        self.ids = np.array(ids, dtype=np.uint64)
        self._prefix = self._prefix_hashes(self.ids)

    @classmethod
    def _prefix_hashes(cls, ids: np.ndarray) -> np.ndarray:
        prefix = np.zeros(len(ids) + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for i, token in enumerate(ids):
                prefix[i + 1] = prefix[i] * cls._BASE + token + np.uint64(1)
        return prefix

    @classmethod
    def _window_hashes(cls, prefix: np.ndarray, k: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            power = np.uint64(1)
            for _ in range(k):
                power = power * cls._BASE
            return prefix[k:] - prefix[:-k] * power

    def _text_ids(self, tokens: list[str]) -> np.ndarray:
        # Unknown words get ids beyond the corpus vocabulary, distinct per position, so they never match.
        unknown = len(self.vocab) + 1
        return np.array(
            [self.vocab.get(t, unknown + i) for i, t in enumerate(tokens)], dtype=np.uint64
        )

    def _find(self, text_ids: np.ndarray, text_prefix: np.ndarray, k: int) -> tuple[int, int] | None:
        """(start in the text, start in the corpus) of a shared k-word span, or None."""
        corpus_hashes = self._window_hashes(self._prefix, k)
        text_hashes = self._window_hashes(text_prefix, k)
        order = np.argsort(corpus_hashes, kind="stable")
        sorted_hashes = corpus_hashes[order]
        for start in np.flatnonzero(np.isin(text_hashes, sorted_hashes)):
            lo = np.searchsorted(sorted_hashes, text_hashes[start], side="left")
            hi = np.searchsorted(sorted_hashes, text_hashes[start], side="right")
            for where in order[lo:hi]:
                if np.array_equal(self.ids[where : where + k], text_ids[start : start + k]):
                    return int(start), int(where)
        return None

    def longest(self, text: str) -> SharedSpan:
        tokens = words(text)
        text_ids = self._text_ids(tokens)
        text_prefix = self._prefix_hashes(text_ids)
        lo, hi, best = 0, min(len(tokens), self.longest_doc), None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            found = self._find(text_ids, text_prefix, mid)
            if found is None:
                hi = mid - 1
            else:
                lo, best = mid, found
        if best is None:
            return SharedSpan(0, "", None)
        start, where = best
        return SharedSpan(lo, " ".join(tokens[start : start + lo]), self.doc_of[where])


def longest_shared_span(text: str, documents: Sequence[str]) -> SharedSpan:
    return SpanIndex(documents).longest(text)
