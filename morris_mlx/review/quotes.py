"""Direct quotes and who they are attributed to.

A model that writes like a journalist puts words in real people's mouths: every quote needs a source,
and one with no speaker named needs one found or the quote cut. Scare quotes of a word or two with no
speaker ("a 'refreshed' scheme") are left alone; anything longer, or attributed, is flagged.
"""

from __future__ import annotations

import re

from morris_mlx.review.flag import Flag
from morris_mlx.review.sentences import Sentence

MIN_WORDS = 3  # shorter quoted text is flagged only when someone is said to have said it
MAX_CHARS = 1200  # an opening mark with no close within this is a stray, not a quote

_SPEECH = (
    r"(?:said|says|say|told|tells|added|adds|claimed|claims|insisted|insists|explained|explains|noted|notes|"
    r"warned|warns|argued|argues|wrote|writes|declared|declares|stated|states|admitted|admits|boasted|boasts|"
    r"quipped|joked|jokes|remarked|observed|recalled|replied|replies|continued|announced|announces|promised|"
    r"promises|predicted|predicts|conceded|concedes|suggested|suggests|believes|reckons|tweeted|posted|"
    r"put it|puts it|calls? (?:it|this|them|that)|called (?:it|this|them|that)|"
    r"describe[sd]?(?: \w+){0,4} as)"
)
_PROPER = r"(?:[A-Z][\w&'’.-]*(?:\s+(?:of\s+|de\s+|van\s+|von\s+)?[A-Z][\w&'’.-]*){0,3})"
# "the chief executive", "a spokesperson for BT", "its boss": a determiner and up to four words.
_PHRASE = r"(?:(?i:the|a|an|one|its|his|her|their|our|another|this|that)(?:\s+[\w'’-]+){1,4}?)"
_SPEAKER = (
    rf"(?:{_PROPER}(?:,\s+{_PHRASE}(?:\s+(?:of|at|for)\s+{_PROPER})?,)?"
    rf"|{_PHRASE}(?:\s+(?:of|at|for)\s+{_PROPER})?(?:,?\s+{_PROPER})?|he|she|they|we|I|it|one)"
)
_AFTER = [
    re.compile(rf"^[\s,]*(?:{_SPEECH})\s+(?P<who>{_SPEAKER})"),  # "...," said Ekholm
    re.compile(rf"^[\s,]*(?P<who>{_SPEAKER})\s+(?:{_SPEECH})\b"),  # "...," Ekholm said
]
_BEFORE = [
    re.compile(
        rf"(?P<who>{_SPEAKER})\s+(?:(?:has|had|have|once|then|later|also)\s+)?(?:{_SPEECH})"
        rf"(?:\s+(?:that\s+)?[\w'’-]+){{0,8}}[\s,:]*$"
    ),
    re.compile(rf"\b[Aa]ccording to\s+(?P<who>{_SPEAKER})[\s,:]*$"),
    re.compile(rf"(?P<who>{_SPEAKER})['’]s?\s+(?:words|view|verdict|line|claim|promise|boast|slogan|pitch|motto)"
               rf"(?:\s+\w+)?[\s,:]*(?:was|is|:)?\s*$"),
]
_LATER = re.compile(rf"^[^\"“”]{{0,80}}?\baccording to\s+(?P<who>{_SPEAKER})")

_PAIRS = {"\u201c": "\u201d", "\u2018": "\u2019", '"': '"', "'": "'"}


def _closing(text: str, open_at: int, limit: int) -> int | None:
    """Offset of the mark that closes the quote opened at `open_at`, or None."""
    mark = text[open_at]
    close = _PAIRS[mark]
    i = open_at + 1
    while i < limit:
        i = text.find(close, i, limit)
        if i < 0:
            return None
        if close in "'\u2019":
            # An apostrophe inside a word (don't, Vodafone's) or a plural possessive (operators') is not
            # the end; a closing mark has no letter straight after it.
            after = text[i + 1] if i + 1 < len(text) else " "
            before = text[i - 1]
            if after.isalpha() or (before == "s" and after == " " and close == "'" and _more_closes(text, i + 1, limit, close)):
                i += 1
                continue
        return i
    return None


def _more_closes(text: str, start: int, limit: int, close: str) -> bool:
    return re.search(rf"{re.escape(close)}(?![^\W\d_])", text[start:limit]) is not None


def _opens(text: str, i: int) -> bool:
    """Whether the mark at `i` opens a quote: at a start, or after a space or bracket, before a word."""
    mark = text[i]
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if mark in "\u201c\u2018":
        return not after.isspace()
    if not (before.isspace() or before in "([{—–-:/") or after.isspace():
        return False
    return True


def _paragraph_end(text: str, i: int) -> int:
    found = re.compile(r"\n\s*\n").search(text, i)
    return found.start() if found else len(text)


def find_quotes(text: str, sentences: list[Sentence]) -> list[Flag]:
    flags: list[Flag] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch not in _PAIRS or not _opens(text, i):
            i += 1
            continue
        limit = min(len(text), i + MAX_CHARS)
        if ch in "'\u2018":
            limit = min(limit, _paragraph_end(text, i))  # single quotes do not run across paragraphs
        end = _closing(text, i, limit)
        if end is None:
            if ch in "\"\u201c":
                # An opened double quote that never closes: flag it up to the end of its paragraph.
                stop = _paragraph_end(text, i)
                quoted = text[i:stop].rstrip()
                if len(quoted.split()) >= MIN_WORDS:
                    who = _speaker(text, i, i + len(quoted), sentences)
                    flags.append(Flag("quote", quoted, i, i + len(quoted), _detail(who, closed=False)))
                i = stop
            else:
                i += 1
            continue
        inner = text[i + 1 : end]
        who = _speaker(text, i, end + 1, sentences)
        if len(inner.split()) >= MIN_WORDS or who:
            flags.append(Flag("quote", text[i : end + 1], i, end + 1, _detail(who)))
        i = end + 1
    return flags


def _speaker(text: str, start: int, end: int, sentences: list[Sentence]) -> str:
    """Who the sentence around the quote says said it, or "" when nobody is named."""
    first = next((s for s in sentences if s.start <= start < s.end), None)
    last = next((s for s in sentences if s.start < end <= s.end), None)
    lo = first.start if first else max(0, start - 200)
    hi = last.end if last else min(len(text), end + 200)
    after = text[end:hi]
    for rx in _AFTER:
        m = rx.match(after)
        if m:
            return _clean(m.group("who"))
    before = text[lo:start]
    for rx in _BEFORE:
        m = rx.search(before)
        if m:
            return _clean(m.group("who"))
    m = _LATER.match(after)
    if m:
        return _clean(m.group("who"))
    return ""


_LEADING = re.compile(r"^(?:As|And|But|So|Then|While|When|Because|Yet|Or|If|Here|Now)\s+")


def _clean(who: str) -> str:
    return _LEADING.sub("", " ".join(who.split()).strip(" ,."))


def _detail(who: str, closed: bool = True) -> str:
    note = "" if closed else " (the quote is never closed)"
    if not who:
        return f"no speaker named: find who said it, or cut it{note}"
    if who.lower() in ("he", "she", "they", "we", "i", "it", "one"):
        return f"attributed to '{who}': check who that is and that they said it{note}"
    return f"attributed to {who}: check they said it, in these words{note}"
