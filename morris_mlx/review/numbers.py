"""Figures: amounts of money, percentages, quantities with units and other numbers.

Every figure a model writes is a guess until checked. Dates are found by `dates` and left out here, as
are digits that are part of a name or a term ("5G", "COVID-19", "3GPP").
"""

from __future__ import annotations

import re

from morris_mlx.review.flag import Flag
from morris_mlx.review.spans import longest_first, overlaps

_SYMBOL = r"(?:US\$|A\$|C\$|HK\$|NZ\$|S\$|R\$|[$€£¥₹])"
_CODE = r"(?:USD|EUR|GBP|JPY|CNY|RMB|CHF|SEK|NOK|DKK|INR|AUD|CAD|KRW|BRL|ZAR)"
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_SCALE = r"(?:\s?(?:bn|mn|tn|m|k|b)\b|\s?(?:thousand|million|billion|trillion)s?\b)"
_UNIT = (
    r"(?:\s?%|\s(?:per\s?cent|percent|percentage points?|basis points|bps)\b"
    r"|\s?(?:GHz|MHz|kHz|THz|Hz|Gbps|Mbps|Kbps|Tbps|Gbit/s|Mbit/s|Gb/s|Mb/s|ms|GB|TB|MB|PB|EB|kW|MW|GW|kWh|MWh"
    r"|GWh|TWh|km|cm|mm|dB|dBm|nm)\b"
    r"|\s(?:miles?|metres?|meters?|kilometres?|kilometers?|kilograms?|kg|tonnes?|tons?|degrees|hours?|minutes?"
    r"|seconds?|users?|subscribers?|customers?|employees?|staff|jobs|homes|premises|sites|towers|base stations)\b)"
)
_CURRENCY_WORD = r"(?:\s(?:euros?|dollars?|pounds?(?: sterling)?|yen|yuan|kronor|krona|kroner|francs?|rupees?|pence|cents?))"
_B = r"(?<![\w.,/])(?<![^\W\d_]-)"  # not inside a word or a longer number, not "COVID-19"
_E = r"(?![^\W_])(?![.,]\d)"

FIGURE = re.compile(
    rf"{_B}(?:{_SYMBOL}\s?|{_CODE}\s?)?{_NUMBER}(?:[-–]{_NUMBER})?(?:{_SCALE})?(?:{_UNIT})?{_CURRENCY_WORD}?{_E}"
)
_NUM_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
    r"|sixty|seventy|eighty|ninety|a hundred|several|a few|half a|a|hundreds of|tens of)"
)
WORDS = re.compile(
    rf"\b{_NUM_WORD}(?:[\s-]+{_NUM_WORD})?\s+(?:hundred|thousand|million|billion|trillion)s?\b"
    rf"(?:\s(?:euros?|dollars?|pounds?))?"
    rf"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|a hundred)"
    rf"(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?\s(?:per\s?cent|percent)\b",
    re.IGNORECASE,
)
_SYMBOL_START = re.compile(rf"\A(?:{_SYMBOL}|{_CODE})")


def _detail(figure: str) -> str:
    if re.search(r"%|per\s?cent|percent|percentage|basis points|\bbps\b", figure):
        return "a percentage: check it and what it is a percentage of"
    if _SYMBOL_START.match(figure) or re.search(_CURRENCY_WORD + r"\Z", " " + figure):
        return "money: check the amount, the currency and the source"
    if re.search(r"\d\s?[A-Za-z]", figure):
        return "a quantity: check the number and the unit"
    return "a number: check it against a source"


def find_numbers(text: str, exclude: list[Flag] | tuple[Flag, ...] = ()) -> list[Flag]:
    """Figures in `text`, leaving out any that overlap `exclude` (the dates)."""
    taken = [(f.start, f.end) for f in exclude]
    matches = []
    for m in FIGURE.finditer(text):
        if not overlaps(m.start(), m.end(), taken):
            matches.append((m.start(), m.end(), "figure"))
    for m in WORDS.finditer(text):
        if not overlaps(m.start(), m.end(), taken):
            matches.append((m.start(), m.end(), "words"))
    return [Flag("number", text[s:e], s, e, _detail(text[s:e])) for s, e, _ in longest_first(matches)]
