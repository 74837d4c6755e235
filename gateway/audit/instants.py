"""Search bounds on `AuditEvent.recorded`: FHIR date prefixes turned into half-open UTC ranges, rendered like the
stored `recorded` column (ISO 8601, UTC, microseconds) so that string comparison is time comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PREFIXES = ("ge", "gt", "le", "lt", "eq")


def recorded_key(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def instant_span(text: str) -> tuple[datetime, datetime] | None:
    """[first moment, first moment after) of a FHIR date, dateTime or instant; None if it is not one."""
    try:
        if len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if len(text) == 10:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # a time without a zone is not an instant
    precision = timedelta(seconds=1) if parsed.microsecond == 0 and "." not in text else timedelta(microseconds=1)
    return parsed, parsed + precision


def date_bounds(value: str) -> tuple[str | None, str | None] | None:
    """(since, before) for one `date` search value such as `ge2025-06-01`; None when it cannot be read."""
    prefix, text = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
    span = instant_span(text)
    if span is None:
        return None
    low, high = recorded_key(span[0]), recorded_key(span[1])
    return {"ge": (low, None), "gt": (high, None), "lt": (None, low), "le": (None, high), "eq": (low, high)}[prefix]
