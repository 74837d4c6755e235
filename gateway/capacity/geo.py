"""Distances for nearest-first capacity: great-circle distance and the origin of a `$find-capacity` request."""

from __future__ import annotations

import math
from typing import Any

from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.search_handler import find_matches

EARTH_RADIUS_KM = 6371.0


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def position_of(location: dict[str, Any] | None) -> tuple[float, float] | None:
    position = (location or {}).get("position") or {}
    try:  # stored decimals come back as Decimal (precision kept), request bodies as float
        return float(position["latitude"]), float(position["longitude"])
    except (KeyError, TypeError, ValueError):
        return None


def parse_near(value: str) -> tuple[tuple[float, float], float | None]:
    """FHIR `near` form: latitude|longitude[|distance[|km]]."""
    parts = value.split("|")
    try:
        lat, lon = float(parts[0]), float(parts[1])
        limit = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except (IndexError, ValueError):
        raise FhirError(400, "invalid", f"'near' must be latitude|longitude[|distance km], not '{value}'",
                        ["near"]) from None
    if len(parts) > 3 and parts[3] not in {"", "km", "[km]"}:
        raise FhirError(400, "not-supported", "'near' distances are in km", ["near"])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FhirError(400, "invalid", f"'{value}' is not a position on earth", ["near"])
    return (lat, lon), limit


def postcode_origin(scope: RequestScope, postcode: str) -> tuple[float, float]:
    """The position of a known Location with this postcode (the gateway holds no postcode table)."""
    normalised = postcode.replace(" ", "").upper()
    with scope.reading() as connection:
        for candidate in (postcode, normalised, f"{normalised[:4]} {normalised[4:]}".strip()):
            for stored in find_matches(scope, connection, "Location", [("address-postalcode", candidate)], limit=20):
                position = position_of(stored.resource())
                if position:
                    return position
    raise FhirError(400, "not-found", f"no Location with postcode '{postcode}' and a position is known; use `near`",
                    ["postcode"])
