"""The plausible window for every date and time GoBiller accepts: 1970-01-01 .. 2100-12-31.

A date far outside it is a typo or poisoned data, never business: an imported
``next_due_date`` of ``0001-01-01`` made each daily cron bill one more year-0001
period, add a late fee and charge the stored card (issue 10). So every door
refuses such dates with one message (import, the editor's and screens' date
fields, the command line's ``--date`` and filter options), and the billing rules
never act on a date outside it that reached the database some other way.

Only the standard library is imported here: the command line parses its options
with these functions without loading the database layer.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "WINDOW_TEXT",
    "DateOutOfWindow",
    "check_date",
    "check_time",
    "in_window",
    "parse_date",
    "parse_expiry",
    "parse_time",
]

#: The first and last dates GoBiller accepts anywhere (inclusive).
DATE_MIN = dt.date(1970, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
WINDOW_TEXT = f"between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXPIRY = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class DateOutOfWindow(ValueError):
    """A well-formed date or time outside 1970-01-01 .. 2100-12-31; the message says so."""


def in_window(value: dt.date) -> bool:
    """Whether ``value`` (a date, or a datetime by its date) lies in the window."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return DATE_MIN <= day <= DATE_MAX


def check_date(value: dt.date) -> dt.date:
    """``value`` itself when it lies in the window; raises ``DateOutOfWindow`` otherwise."""
    if not in_window(value):
        raise DateOutOfWindow(f"{value.isoformat()} is not a plausible date: must be {WINDOW_TEXT}")
    return value


def check_time(value: dt.datetime) -> dt.datetime:
    """``value`` (naive UTC) itself when its date lies in the window; raises
    ``DateOutOfWindow`` otherwise."""
    if not in_window(value):
        raise DateOutOfWindow(f"{value.isoformat()} is not a plausible time: must be {WINDOW_TEXT}")
    return value


def parse_date(text: object) -> dt.date:
    """A date written ``YYYY-MM-DD`` (PRODUCT.md §5) inside the window.

    Raises ``ValueError`` ("must be a date YYYY-MM-DD") for anything else, or
    ``DateOutOfWindow`` (a ``ValueError``) for a real date outside the window.
    """
    if not isinstance(text, str) or not _DATE.fullmatch(text.strip()):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        value = dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError("must be a date YYYY-MM-DD") from exc
    return check_date(value)


def parse_time(text: object) -> dt.datetime:
    """An ISO 8601 time with an offset (``...Z``, PRODUCT.md §5) as naive UTC, whole
    seconds, inside the window.

    Raises ``ValueError`` for text that is not such a time (a missing offset
    included), ``DateOutOfWindow`` for a time outside the window. Offsets that push
    a time past year 1 or 9999 are out of the window, not a crash.
    """
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 UTC time")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 UTC time") from exc
    if parsed.tzinfo is None:
        raise ValueError("must be an ISO 8601 UTC time (with Z)")
    if not in_window(parsed):  # before converting: an offset at year 1 or 9999 overflows
        raise DateOutOfWindow(f"{text} is not a plausible time: must be {WINDOW_TEXT}")
    value = parsed.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
    return check_time(value)


def parse_expiry(text: object) -> str:
    """A card expiry ``YYYY-MM`` whose month lies in the window; returned as given.

    Raises ``ValueError`` ("must be YYYY-MM") or ``DateOutOfWindow``.
    """
    found = _EXPIRY.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError("must be YYYY-MM")
    year = int(found.group(1))
    if not DATE_MIN.year <= year <= DATE_MAX.year:
        raise DateOutOfWindow(f"{text} is not a plausible expiry: must be {WINDOW_TEXT}")
    return str(text)
