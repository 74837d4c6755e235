"""Reading the parameters of the capacity operations (token lists, booleans, moments) with FHIR errors."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.capacity.model import parse_instant
from gateway.fhir.errors import FhirError


def values(params: list[tuple[str, str]], name: str) -> list[str]:
    """All values of a parameter: repeated and comma-separated (OR) alike; a `system|code` keeps the code."""
    found = []
    for key, value in params:
        if key == name:
            found += [part.rsplit("|", 1)[-1].strip() for part in value.split(",") if part.strip()]
    return found


def single(params: list[tuple[str, str]], name: str) -> str | None:
    found = [value for key, value in params if key == name]
    if len(found) > 1:
        raise FhirError(400, "invalid", f"'{name}' may be given once", [name])
    return found[0] if found else None


def boolean(params: list[tuple[str, str]], name: str) -> bool:
    value = single(params, name)
    if value in (None, "false"):
        return False
    if value == "true":
        return True
    raise FhirError(400, "invalid", f"'{name}' must be true or false, not '{value}'", [name])


def moment(params: list[tuple[str, str]], name: str, default: datetime) -> datetime:
    value = single(params, name)
    if value is None:
        return default
    try:
        return parse_instant(value).astimezone(UTC)
    except ValueError:
        message = f"'{name}' must be a dateTime with a time zone, not '{value}'"
        raise FhirError(400, "invalid", message, [name]) from None


def count(params: list[tuple[str, str]], name: str, default: int, maximum: int) -> int:
    value = single(params, name)
    if value is None:
        return default
    if not value.isdigit():
        raise FhirError(400, "invalid", f"'{name}' must be a whole number", [name])
    return min(int(value), maximum)


def known(codes: list[str], universe: set[str] | dict[str, object], what: str, name: str) -> None:
    unknown = [code for code in codes if code not in universe]
    if unknown:
        raise FhirError(400, "code-invalid", f"unknown {what}: {', '.join(unknown)}", [name])
