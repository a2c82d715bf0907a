"""Spans the article shares with a corpus: runs of 12 or more words that also occur there.

Word 12-gram shingles over normalised words (case, accents of quotes, punctuation ignored), kept in a
hash table built once per corpus: looking up a 1,000-word article is ~1,000 dictionary probes. Twelve
words is long enough that ordinary phrases ("at the end of the day, ...") do not match by chance, and
short enough to catch a copied sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from morris_mlx.review.flag import Flag

SHINGLE_WORDS = 12
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def words_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) for each word of `text`."""
    return [(_normalise(m.group(0)), m.start(), m.end()) for m in _WORD.finditer(text)]


def _normalise(word: str) -> str:
    word = unicodedata.normalize("NFKC", word).casefold().replace("’", "").replace("'", "")
    return word


def _key(words: Iterable[str]) -> int:
    # Python's string hash: fast, and stable within the process that holds the table.
    return hash(" ".join(words))


@dataclass
class ShingleIndex:
    """Which corpus document holds each 12-word shingle."""

    size: int = SHINGLE_WORDS
    sources: list[str] = field(default_factory=list)
    _table: dict[int, int] = field(default_factory=dict)

    def add(self, text: str, source: str) -> None:
        """Index `text`, remembered as coming from `source` (a file name, "train.jsonl line 3")."""
        words = [w for w, _, _ in words_with_offsets(text)]
        if len(words) < self.size:
            return
        doc = len(self.sources)
        self.sources.append(source)
        for i in range(len(words) - self.size + 1):
            self._table.setdefault(_key(words[i : i + self.size]), doc)

    def __len__(self) -> int:
        return len(self._table)

    def find(self, text: str) -> list[Flag]:
        """Each maximal run of the article's words that is covered by shingles found in the corpus."""
        words = words_with_offsets(text)
        n = self.size
        hits: list[tuple[int, int]] = []  # (first word index of a shared shingle, corpus doc)
        for i in range(len(words) - n + 1):
            doc = self._table.get(_key(w for w, _, _ in words[i : i + n]))
            if doc is not None:
                hits.append((i, doc))
        flags: list[Flag] = []
        run_start = run_end = -1
        run_doc = 0
        for i, doc in hits:
            if i < run_end:  # overlaps the run so far
                run_end = i + n
                continue
            if run_start >= 0:
                flags.append(self._flag(text, words, run_start, run_end, run_doc))
            run_start, run_end, run_doc = i, i + n, doc
        if run_start >= 0:
            flags.append(self._flag(text, words, run_start, run_end, run_doc))
        return flags

    def _flag(self, text: str, words: list[tuple[str, int, int]], first: int, stop: int, doc: int) -> Flag:
        start, end = words[first][1], words[stop - 1][2]
        return Flag(
            "copied",
            text[start:end],
            start,
            end,
            f"{stop - first} words also in {self.sources[doc]}: rewrite or attribute it",
        )
