"""Sentences with their character offsets, for the checks that reason per sentence (quote attribution,
statements about a named party, sentence-initial capitals).

A small rule-based splitter rather than a library one: it must keep exact offsets into Markdown, treat a
heading or a list item as a sentence of its own, and run in well under a millisecond per paragraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words whose trailing full stop does not end a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sir st inc ltd co corp plc llc bros vs etc e.g i.e al approx dept est fig gen gov "
    "jr sr no nos vol rev capt col lt sgt u.s u.k u.n e.u jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}\s|[-*+]\s|\d+[.)]\s|>\s?)")
_END = re.compile(r"[.!?…]+[\"'\u201d\u2019)\]*_]*(?=\s)")
_NEXT_START = re.compile(r"\s+[\"'\u201c\u2018(\[*_]*[^\W_]")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str
    first_in_block: bool  # the first sentence of a paragraph, heading or list item
    heading: bool  # a Markdown heading line


def _blocks(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_heading) of paragraphs, headings and list items; wrapped lines join a paragraph."""
    blocks: list[tuple[int, int, bool]] = []
    current: list[int] | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        line_start, line_end = offset, offset + len(line.rstrip("\r\n"))
        offset += len(line)
        if not stripped:
            current = None
            continue
        if _BLOCK_START.match(line) or stripped.startswith("|"):
            blocks.append((line_start, line_end, stripped.startswith("#")))
            current = None
            continue
        if current is None or not _continues(text[blocks[current[0]][0] : blocks[current[0]][1]], stripped):
            blocks.append((line_start, line_end, False))
            current = [len(blocks) - 1]
        else:
            s, _, h = blocks[current[0]]
            blocks[current[0]] = (s, line_end, h)
    return blocks


def _continues(previous: str, line: str) -> bool:
    """Whether `line` carries on the paragraph above (a hard-wrapped sentence) rather than starting one.

    Generated text often puts paragraphs on single lines with no blank line between them, so a line
    that starts with a capital after one that ends a sentence, or after a label such as "14:58", starts
    a new block; a line starting in lower case always continues.
    """
    first = line[0]
    if first.islower():
        return True
    last = previous.rstrip()[-1:]
    return not (first.isupper() or first.isdigit() or first in "\"'“‘#*") or (last.isalpha() and last.islower() or last == ",")


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"([^\W\d_][\w.]*)$", text[:dot])
    if not word:
        return False
    token = word.group(1).lower().rstrip(".")
    if token in ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):
        return True  # a known abbreviation, or initials such as "J.P."
    return len(token) == 1 and text[dot - 1].isupper()  # an initial: "J. Smith"


def split_sentences(text: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    for block_start, block_end, heading in _blocks(text):
        chunk = text[block_start:block_end]
        cut = 0
        first = True
        for end in _END.finditer(chunk):
            if chunk[end.start()] == "." and _is_abbreviation(chunk, end.start()):
                continue
            if not _NEXT_START.match(chunk, end.end()):
                continue
            sentences.extend(_sentence(text, block_start + cut, block_start + end.end(), first, heading))
            first = False
            cut = end.end()
        sentences.extend(_sentence(text, block_start + cut, block_end, first, heading))
    return sentences


def _sentence(text: str, start: int, end: int, first: bool, heading: bool) -> list[Sentence]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    return [Sentence(start, end, text[start:end], first, heading)]


def sentence_at(sentences: list[Sentence], offset: int) -> Sentence | None:
    for sentence in sentences:
        if sentence.start <= offset < sentence.end:
            return sentence
    return None
