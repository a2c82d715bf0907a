"""Dates: calendar dates, months, years, quarters, weekdays and relative dates ("last year").

A date in generated text is a claim that something happened then, and small models get them wrong.
"""

from __future__ import annotations

import re

from morris_mlx.review.flag import Flag
from morris_mlx.review.spans import longest_first

_MONTHS = "January|February|March|April|June|July|August|September|October|November|December"
_MONTH_ABBR = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
# "May" is a month only next to a day or a year, or after a word that introduces a time.
_MAY = r"(?:(?<=\bin )|(?<=\bsince )|(?<=\bby )|(?<=\buntil )|(?<=\bfrom )|(?<=\bof )|(?<=\bearly )|(?<=\blate )|(?<=\bmid-)|(?<=\blast )|(?<=\bnext )|(?<=\bthis )|(?<=\bduring ))May"
_MONTH_ANY = rf"(?:{_MONTHS}|May|(?:{_MONTH_ABBR})\.?)"
_YEAR = r"(?:19|20)\d{2}"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_B = r"(?<![\w$€£¥.,/-])"  # no digit, letter, currency or decimal point just before
_E = r"(?![\w%]|[.,]\d)"  # and none just after

PATTERNS = [
    ("date", rf"{_B}{_YEAR}-[01]\d-[0-3]\d{_E}"),
    ("date", rf"{_B}[0-3]?\d/[0-3]?\d/(?:{_YEAR}|\d{{2}}){_E}"),  # 23/07/16 or the US 07/23/16
    ("date", rf"\b{_DAY}\s+(?:of\s+)?{_MONTH_ANY}(?:,?\s+{_YEAR})?{_E}"),
    ("date", rf"\b{_MONTH_ANY}\s+{_DAY}(?:,?\s+{_YEAR})?{_E}"),
    ("month", rf"\b(?:(?:early|late|mid|the end of|the start of)[\s-]+)?{_MONTH_ANY}\s+(?:of\s+)?{_YEAR}{_E}"),
    ("month", rf"\b(?:{_MONTHS})\b"),
    ("month", rf"{_MAY}\b"),
    ("quarter", rf"\b(?:Q[1-4]|H[12])(?:(?:\s+|-|/)(?:{_YEAR}|'\d{{2}}))?\b"),
    ("quarter", rf"\b(?:FY|fiscal\s+)(?:{_YEAR}|'?\d{{2}})\b"),
    (
        "quarter",
        rf"\b(?:the\s+)?(?:first|second|third|fourth|final|last|latest|next)\s+(?:quarter|half)"
        rf"(?:\s+(?:of\s+)?{_YEAR})?\b",
    ),
    ("decade", r"(?:\bthe\s+)?(?:\b(?:19|20)?\d0s|'\d0s)\b"),
    ("year", rf"{_B}{_YEAR}(?:(?:/|-|–)(?:{_YEAR}|\d{{2}}))?{_E}"),
    ("weekday", r"\b(?:(?:last|next|this|on|every)\s+)?(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b"),
    ("time", r"\b(?:[01]?\d|2[0-3])(?::[0-5]\d)?\s?(?:am|pm|a\.m\.|p\.m\.|AM|PM)(?![\w.])"),
    ("time", rf"{_B}(?:[01]?\d|2[0-3]):[0-5]\d{_E}"),
    (
        "relative",
        r"\b(?:yesterday|today|tonight|tomorrow|last night|(?:last|next|this|past|earlier this|later this)\s+"
        r"(?:week|month|year|quarter|spring|summer|autumn|fall|winter|decade|century))\b",
    ),
    (
        "relative",
        r"\b(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|a few|several|\d+)\s+"
        r"(?:days?|weeks?|months?|years?|decades?)\s+ago\b",
    ),
    ("season", rf"\b(?:spring|summer|autumn|fall|winter)\s+(?:of\s+)?{_YEAR}{_E}"),
]
# Relative dates open sentences too ("Last year, ..."); names of months and days are always capitalised.
_COMPILED = [(label, re.compile(pattern, re.IGNORECASE if label == "relative" else 0)) for label, pattern in PATTERNS]

DETAIL = {
    "date": "a date: check it happened then",
    "month": "a month: check the timing",
    "quarter": "a reporting period: check the timing and the figures for it",
    "decade": "a decade: check the timing",
    "year": "a year: check what is said to have happened then",
    "weekday": "a day: check the timing",
    "relative": "a relative date: check it against the publication date",
    "season": "a season: check the timing",
    "time": "a time of day: check the timing",
}


def _part_of_a_name(text: str, start: int) -> bool:
    """A capitalised "Today" or "Last Week" inside a sentence is a name ("Business Today"), not a date."""
    if not text[start].isupper():
        return False
    before = text[:start].rstrip(" \t\"'“‘(*_")
    return bool(before) and before[-1] not in ".!?:\n#-–—"


def find_dates(text: str) -> list[Flag]:
    matches = [
        (m.start(), m.end(), label)
        for label, rx in _COMPILED
        for m in rx.finditer(text)
        if not (label == "relative" and _part_of_a_name(text, m.start()))
    ]
    return [Flag("date", text[s:e], s, e, DETAIL[label]) for s, e, label in longest_first(matches)]
