"""Small parameter parsers shared by history and operations (search has its own in gateway.search.query)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.fhir.errors import FhirError


def parse_count(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit():
        raise FhirError(400, "invalid", f"_count must be a non-negative integer, not '{raw}'", ["_count"])
    return min(int(raw), maximum)


def parse_instant_param(name: str, raw: str) -> str:
    """A FHIR instant/dateTime parameter -> the store's UTC string form."""
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, "invalid", f"{name} must be an instant like 2024-01-01T00:00:00Z, not '{raw}'") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
