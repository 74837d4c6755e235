"""FHIR date/dateTime/instant strings -> aware datetimes (UTC when no offset is given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_instant(value: object, end: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant; a partial date means its first moment (or its last, with `end`)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            start, span = datetime(int(text), 1, 1, tzinfo=UTC), _years(int(text))
        elif len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            span = following - start
        elif len(text) == 10:
            start, span = datetime.fromisoformat(text).replace(tzinfo=UTC), timedelta(days=1)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        return None
    return start + span - timedelta(microseconds=1) if end else start


def _years(year: int) -> timedelta:
    return datetime(year + 1, 1, 1, tzinfo=UTC) - datetime(year, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
