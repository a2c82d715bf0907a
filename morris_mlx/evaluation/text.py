"""The few text primitives every scorer shares, so they all count words and sentences the same way."""

from __future__ import annotations

import re

WORD_RE = re.compile(r"[a-z]+(?:['\u2019][a-z]+)*")
_HEADING_RE = re.compile(r"^\s*#+\s.*$", re.MULTILINE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)\]]*\s+|\n\s*\n")


def normalise(text: str) -> str:
    """Lower case, curly apostrophes straightened, whitespace collapsed."""
    return " ".join(text.replace("\u2019", "'").lower().split())


def words(text: str) -> list[str]:
    """Lower-case word tokens; numbers and punctuation are not words here."""
    return WORD_RE.findall(text.replace("\u2019", "'").lower())


def strip_headings(text: str) -> str:
    """Markdown heading lines removed: a title is not prose and would count as a run-on sentence."""
    return _HEADING_RE.sub("", text)


def sentences(text: str) -> list[str]:
    """Sentences of the prose (headings dropped); a paragraph break also ends a sentence."""
    parts = _SENTENCE_END_RE.split(strip_headings(text))
    return [p.strip() for p in parts if p and words(p)]


def first_words(text: str, n: int) -> str:
    """The first `n` words of the prose, as text (headings dropped)."""
    return " ".join(words(strip_headings(text))[:n])


def chunk_words(text: str, size: int) -> list[str]:
    """`text` cut into consecutive pieces of about `size` whitespace-separated tokens, punctuation kept.

    A tail shorter than half a piece joins the piece before it, so no chunk is a stub.
    """
    tokens = strip_headings(text).split()
    if size <= 0 or len(tokens) <= size:
        return [" ".join(tokens)] if tokens else []
    pieces = [tokens[i : i + size] for i in range(0, len(tokens), size)]
    if len(pieces) > 1 and len(pieces[-1]) < size / 2:
        pieces[-2].extend(pieces.pop())
    return [" ".join(p) for p in pieces]


def truncate_words(text: str, size: int) -> str:
    """The first `size` whitespace-separated tokens of the prose (headings dropped)."""
    return " ".join(strip_headings(text).split()[:size])
