"""FHIR date/dateTime/instant values as implicit UTC ranges of fixed-width strings.

FHIR search compares dates as ranges: `2020` stands for the whole year, `2020-03-01T10:00Z` for that minute.
The index and the query both use [low, high] strings `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC, so that every
comparison is a plain string comparison on SQLite and PostgreSQL alike. Values without a time zone are taken
as UTC (the gateway's sources are all in one zone, and a fixed rule beats a guess per request).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

MIN_DATE = "0001-01-01T00:00:00.000000"
MAX_DATE = "9999-12-31T23:59:59.999999"

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def date_range(text: str) -> tuple[str, str] | None:
    """The [low, high] UTC range a FHIR date/dateTime/instant denotes, or None if it is not one."""
    if not isinstance(text, str):
        return None
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    parts = match.groupdict()
    try:
        return _range(parts)
    except ValueError:  # month 13, February 30, hour 25 ...
        return None


def _range(parts: dict[str, str | None]) -> tuple[str, str]:
    year = int(parts["year"] or 0)
    if year == 0:
        raise ValueError("year 0")
    if parts["month"] is None:
        return f"{year:04d}-01-01T00:00:00.000000", f"{year:04d}-12-31T23:59:59.999999"
    month = int(parts["month"])
    if not 1 <= month <= 12:
        raise ValueError("month")
    if parts["day"] is None:
        last = calendar.monthrange(year, month)[1]
        return (
            f"{year:04d}-{month:02d}-01T00:00:00.000000",
            f"{year:04d}-{month:02d}-{last:02d}T23:59:59.999999",
        )
    day = int(parts["day"])
    if parts["hour"] is None:
        datetime(year, month, day)  # validates the day
        return (
            f"{year:04d}-{month:02d}-{day:02d}T00:00:00.000000",
            f"{year:04d}-{month:02d}-{day:02d}T23:59:59.999999",
        )
    hour, minute = int(parts["hour"]), int(parts["minute"] or 0)
    if hour == 24 and minute == 0 and not int(parts["second"] or 0):
        raise ValueError("24:00 is not a FHIR time")
    second = int(parts["second"] or 0)
    if second == 60:
        second = 59  # leap second: keep it inside the minute
    fraction = parts["fraction"]
    if parts["second"] is None:
        width = timedelta(minutes=1)
        micro = 0
    elif not fraction:
        width = timedelta(seconds=1)
        micro = 0
    else:
        digits = fraction[:6]
        micro = int(digits.ljust(6, "0"))
        width = timedelta(microseconds=10 ** (6 - len(digits)))
    local = datetime(year, month, day, hour, minute, second, micro)
    offset = timedelta(0)
    zone = parts["zone"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return _utc(local, -offset), _utc(local, width - timedelta(microseconds=1) - offset)


def _utc(local: datetime, delta: timedelta) -> str:
    """`local + delta` formatted; beyond year 1..9999 (a zone shift at the edges) clamped to the extremes."""
    try:
        return (local + delta).isoformat(timespec="microseconds")
    except OverflowError:
        return MAX_DATE if delta > timedelta(0) else MIN_DATE


def format_instant(value: datetime) -> str:
    """A timezone-aware datetime as the stored fixed-width UTC string."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def shift(value: str, delta: timedelta) -> str:
    """A stored date string moved by `delta`, clamped to the representable range."""
    moved = datetime.fromisoformat(value)
    try:
        return (moved + delta).isoformat(timespec="microseconds")
    except OverflowError:
        return MAX_DATE if delta > timedelta(0) else MIN_DATE


def distance(value: str, other: datetime) -> timedelta:
    """Absolute distance between a stored date string and a naive-UTC datetime."""
    return abs(datetime.fromisoformat(value) - other)
