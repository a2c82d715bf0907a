"""Publication dates in whatever form a page gives them, turned into ISO 8601."""

from __future__ import annotations

import email.utils
import re
from datetime import date, datetime

_MONTH_FORMS = (
    "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y", "%d %B, %Y", "%d %b, %Y",
    "%b. %d, %Y",
)
_MONTH_NAME_DATE = re.compile(
    r"(\d{1,2}\s+[A-Z][a-z]{2,8}\.?,?\s+\d{4}|[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4})"
)
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?")


def normalize_date(text: str | None) -> str | None:
    """ISO 8601 for a date or timestamp in ISO, RFC 2822 or 'March 5, 2024' form; None if unreadable.

    A bare date stays a date ('2024-03-05'); a timestamp keeps its offset when it has one.
    """
    if not text:
        return None
    text = " ".join(str(text).split())
    iso = _ISO_DATE.search(text)
    if iso:
        found = iso.group(0)
        if len(found) == 10:
            try:
                return date.fromisoformat(found).isoformat()
            except ValueError:
                return None
        try:
            return datetime.fromisoformat(found.replace(" ", "T")).isoformat()
        except ValueError:
            pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None:
        return parsed.isoformat()
    named = _MONTH_NAME_DATE.search(text)
    if named:
        candidate = named.group(0).replace("Sept.", "Sep.").replace("Sept ", "Sep ")
        for form in _MONTH_FORMS:
            try:
                return datetime.strptime(candidate, form).date().isoformat()
            except ValueError:
                continue
    return None


def date_of(iso: str | None) -> date | None:
    """The calendar date of an ISO 8601 string written by `normalize_date`."""
    if not iso:
        return None
    try:
        return date.fromisoformat(iso[:10])
    except ValueError:
        return None


def parse_since(text: str) -> date:
    """`--since` value: YYYY-MM-DD (a full ISO timestamp is accepted and cut to its date)."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise ValueError(f"{text!r} is not a date like 2024-01-31") from None
