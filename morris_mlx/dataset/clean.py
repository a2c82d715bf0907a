"""Cleaning: normalise unicode and whitespace, drop boilerplate and byline lines, keep paragraphs, and
reject items that are too short or are not prose. Each removal is counted under a reason."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from morris_mlx.dataset.article import Article

_INVISIBLE = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but newline, no-break and thin spaces included
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?…](?:[\"'”’)\]]*)(?=\s|$)")
_STRUCTURAL = re.compile(r"^(#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>\s?)")

# Site furniture that scrapers pick up between paragraphs. Only short lines are tested, so prose that
# happens to start with the same words ("Read more carefully and ...") survives.
_SHORT_LINE_WORDS = 20
_BOILERPLATE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # a navigation label alone, or followed by a colon and link text
        r"^(related( posts?| articles?| stories| content| reading| links?)?|read more|read next|see also"
        r"|recommended( reading| for you)?|you may also like|most (read|popular)"
        r"|more (from|on|about) [^.!?]*)\s*(:.*)?$",
        r"^(advertisement|advert|sponsored( content)?|promoted( content)?|ad)$",
        r"^share (this|on|via)\b.*$",
        r"^(subscribe|sign up|register)\b.*$",
        r"\bnewsletter\b.*\b(subscribe|sign up)\b|\b(subscribe|sign up)\b.*\bnewsletter\b",
        r"^click here\b.*$",
        r"^follow (us|me|@\w+)\b.*$",
        r"^(copyright|©|\(c\))\s*.*$",
        r"\ball rights reserved\b",
        r"^want to know more about\b.*$",
        r"^this (article|story|post) (was |first |originally )+(appeared|published)\b.*$",
        r"^\(?(image|photo|picture|source|credit|caption)s?( credit)?\s*:.*$",
        r"^(tags?|filed under|topics?|categories?)\s*:.*$",
        r"^(published|updated|posted|last updated)( on)?\s*:?\s.*\d.*$",
        r"^\d{1,2}/\d{1,2}/\d{2,4}(\s*\|.*)?$",
        r"^(\d+ )?(comments?|leave a (comment|reply)|log in to comment|add a comment)\b.*$",
    )
]
_NAME = r"[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,3}"
_BYLINE = [
    re.compile(r"^(?i:by|written by|posted by|words by)\s+" + _NAME + r"\s*(?:[,|–—-].*)?$"),
    re.compile(r"^[—–-]{1,2}\s*" + _NAME + r"\s*(?:,.*)?$"),
    re.compile(r"^" + _NAME + r"\s*,.*\b(?i:editor|reporter|correspondent|analyst|writer|columnist)\b.*$"),
]
_URL_ONLY = re.compile(r"^(?:<?https?://\S+>?\s*)+$|^\[[^\]]*\]\([^)]*\)$|^!\[[^\]]*\]\([^)]*\)$")
_TAG_ONLY = re.compile(r"^</?[a-zA-Z][^>]*>$")


def normalize(text: str) -> str:
    """NFC, one kind of newline, no invisible or control characters, single spaces; newlines kept."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text.translate(_INVISIBLE))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def normalize_line(text: str) -> str:
    """A one-line field (title, standfirst, topic): normalised, all whitespace collapsed, no '#' prefix."""
    return re.sub(r"^#+\s*", "", " ".join(normalize(text).split()))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def count_sentences(text: str) -> int:
    return len(_SENTENCE_END.findall(text))


def _short(line: str) -> bool:
    return len(line.split()) <= _SHORT_LINE_WORDS


def line_reason(line: str, author: str = "") -> str | None:
    """Why a single line is furniture rather than writing ('boilerplate', 'byline'), or None."""
    if not _short(line):
        return None
    bare = line.strip("*_ ")
    if author and bare.casefold() in {author.casefold(), f"by {author}".casefold()}:
        return "byline"
    if not bare.endswith((".", "!", "?", "…")) and any(p.search(bare) for p in _BYLINE):
        return "byline"
    if any(p.search(bare) for p in _BOILERPLATE):
        return "boilerplate"
    return None


def _letter_ratio(text: str) -> float:
    chars = [c for c in text if not c.isspace()]
    return sum(c.isalpha() for c in chars) / len(chars) if chars else 0.0


def paragraph_reason(paragraph: str) -> str | None:
    """'non_prose' for link lists, tables, tags and number dumps; None for writing."""
    if _URL_ONLY.match(paragraph) or _TAG_ONLY.match(paragraph) or paragraph.startswith("|"):
        return "non_prose"
    if _letter_ratio(paragraph) < 0.5:
        return "non_prose"
    return None


def _blocks(text: str) -> list[list[str]]:
    """Lines grouped into paragraphs. Blank lines separate paragraphs; a text with no blank line at all
    (some scrapers write one paragraph a line) takes every line as its own paragraph."""
    lines = text.split("\n")
    if not any(not line for line in lines[1:-1]) and sum(1 for line in lines if line) > 1:
        return [[line] for line in lines if line]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def _join(lines: list[str]) -> str:
    """Hard-wrapped lines become one line; Markdown headings, list items and quotes keep their own."""
    out = lines[0]
    for previous, line in zip(lines, lines[1:], strict=False):
        out += ("\n" if _STRUCTURAL.match(line) or previous.startswith("#") else " ") + line
    return out


def clean_paragraphs(
    text: str, title: str = "", standfirst: str = "", author: str = ""
) -> tuple[list[str], Counter]:
    """The body's paragraphs with furniture removed, and what was removed by reason."""
    removed: Counter = Counter()
    paragraphs: list[str] = []
    for block in _blocks(normalize(text)):
        kept = []
        for line in block:
            reason = line_reason(line, author)
            if reason:
                removed[reason] += 1
            else:
                kept.append(line)
        if not kept:
            continue
        paragraph = _join(kept)
        reason = paragraph_reason(paragraph)
        if reason is None and not paragraphs:
            # Scraped bodies often repeat the headline or standfirst as their first paragraph.
            bare = normalize_line(paragraph).casefold()
            if bare and bare in {title.casefold(), standfirst.casefold()}:
                reason = "repeated_heading"
        if reason:
            removed[reason] += 1
        else:
            paragraphs.append(paragraph)
    return paragraphs, removed


def clean_article(article: Article, min_words: int) -> tuple[Article | None, str | None]:
    """The cleaned article, or None and the reason it was dropped."""
    title = normalize_line(article.title)
    standfirst = normalize_line(article.standfirst)
    topic = normalize_line(article.topic) or title
    if not title:
        return None, "no_title"
    paragraphs, removed = clean_paragraphs(article.text, title, standfirst, normalize_line(article.author))
    if not paragraphs:
        return None, "empty"
    body = "\n\n".join(paragraphs)
    n_words = len(words(body))
    if n_words < min_words:
        return None, "too_short"
    # Writing has sentences and paragraphs of some length; link lists and tables of figures do not.
    if count_sentences(body) < 3 or n_words / len(paragraphs) < 8 or _letter_ratio(body) < 0.6:
        return None, "not_prose"
    return article.cleaned(title, standfirst, topic, paragraphs, dict(removed)), None
