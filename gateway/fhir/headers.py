"""Version headers of the FHIR http spec: ETag, Last-Modified, Location/Content-Location, If-Match."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

from gateway.fhir.errors import FhirError


def etag(version: int | str) -> str:
    return f'W/"{version}"'


def http_date(instant: str) -> str:
    return format_datetime(datetime.fromisoformat(instant), usegmt=True)


def version_headers(
    base_url: str, resource_type: str, resource_id: str, version: int, last_updated: str, location: bool = False
) -> dict[str, str]:
    url = f"{base_url}/{resource_type}/{resource_id}/_history/{version}"
    headers = {"ETag": etag(version), "Last-Modified": http_date(last_updated), "Content-Location": url}
    if location:
        headers["Location"] = url
    return headers


def parse_if_match(value: str | None) -> int | None:
    """`W/"3"` or `"3"` or `3` -> 3; None when absent."""
    if value is None:
        return None
    raw = value.strip()
    raw = raw[2:] if raw.startswith("W/") else raw
    raw = raw.strip('"')
    if not raw.isdigit():
        raise FhirError(400, "invalid", f"If-Match '{value}' is not a version ETag like W/\"1\"")
    return int(raw)
