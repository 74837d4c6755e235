"""Building and reading capacity resources: Organization, Location, HealthcareService, Schedule and Slot as
the capacity profiles describe them. Ids are derived from the source's keys, so a repeated report writes the
same resources (idempotent) and a Slot is the same bed from one report to the next."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.capacity.terms import Category, Region
from gateway.capacity.urls import (
    CATEGORY_SYSTEM,
    LOCATION_ID_SYSTEM,
    ORGANIZATION_TYPE_SYSTEM,
    PROFILE_HEALTHCARE_SERVICE,
    PROFILE_SCHEDULE,
    PROFILE_SLOT,
    REGION_EXTENSION,
    SOURCE_TIMESTAMP_EXTENSION,
    URA_SYSTEM,
)

FREE, BUSY, UNAVAILABLE, TENTATIVE = "free", "busy", "busy-unavailable", "busy-tentative"
CLOSED_COMMENT = "closed: the source reported fewer units"
DEFAULT_HORIZON = timedelta(hours=24)


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class UnitKey:
    """What one capacity report is about: a category at a location of an organisation (URA)."""

    ura: str
    location: str  # the source's own code for the location
    category: str

    @property
    def organization_id(self) -> str:
        return f"cap-org-{_digest(self.ura)}"

    @property
    def location_id(self) -> str:
        return f"cap-loc-{_digest(self.ura, self.location)}"

    @property
    def service_id(self) -> str:
        return f"cap-hcs-{_digest(self.ura, self.location, self.category)}"

    @property
    def schedule_id(self) -> str:
        return f"cap-sch-{_digest(self.ura, self.location, self.category)}"

    def slot_id(self, index: int) -> str:
        return f"cap-slot-{_digest(self.ura, self.location, self.category)}-{index}"


def instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_instant(value: str) -> datetime:
    """FHIR instant/dateTime with a zone (a source timestamp without one is refused: it is ambiguous)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"'{value}' has no time zone")
    return moment


def region_extension(region: Region) -> dict[str, Any]:
    return {"url": REGION_EXTENSION, "valueCoding": region.coding()}


def source_timestamp_extension(moment: str) -> dict[str, Any]:
    return {"url": SOURCE_TIMESTAMP_EXTENSION, "valueInstant": moment}


def organization(key: UnitKey, name: str | None = None, organization_type: str | None = None,
                 region: Region | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Organization", "id": key.organization_id}
    if region:
        resource["extension"] = [region_extension(region)]
    resource["identifier"] = [{"system": URA_SYSTEM, "value": key.ura}]
    resource["active"] = True
    if organization_type:
        resource["type"] = [{"coding": [{"system": ORGANIZATION_TYPE_SYSTEM, "code": organization_type}]}]
    resource["name"] = name or f"Zorgaanbieder URA {key.ura}"
    return resource


def location(key: UnitKey, name: str | None = None, region: Region | None = None, city: str | None = None,
             postcode: str | None = None, position: tuple[float, float] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Location", "id": key.location_id}
    if region:
        resource["extension"] = [region_extension(region)]
    resource["identifier"] = [{"system": LOCATION_ID_SYSTEM, "value": f"{key.ura}|{key.location}"}]
    resource["status"] = "active"
    resource["name"] = name or key.location
    if city or postcode:
        resource["address"] = {k: v for k, v in (("city", city), ("postalCode", postcode), ("country", "NL")) if v}
    if position:
        resource["position"] = {"latitude": position[0], "longitude": position[1]}
    resource["managingOrganization"] = {"reference": f"Organization/{key.organization_id}"}
    return resource


def healthcare_service(key: UnitKey, category: Category, region: Region | None,
                       telecom: str | None = None, available_time: list[dict[str, Any]] | None = None
                       ) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "HealthcareService", "id": key.service_id,
                                "meta": {"profile": [PROFILE_HEALTHCARE_SERVICE]}}
    if region:
        resource["extension"] = [region_extension(region)]
    resource["active"] = True
    resource["providedBy"] = {"reference": f"Organization/{key.organization_id}"}
    resource["category"] = [{"coding": [category.group_coding()]}]
    resource["type"] = [{"coding": [category.coding()]}]
    resource["location"] = [{"reference": f"Location/{key.location_id}"}]
    resource["name"] = f"{category.display} ({key.location})"
    if telecom:
        resource["telecom"] = [{"system": "phone", "value": telecom, "use": "work"}]
    if region:
        resource["coverageArea"] = [{"reference": f"Location/{key.location_id}"}]
    if available_time:
        resource["availableTime"] = available_time
    return resource


def schedule(key: UnitKey, category: Category, region: Region | None, source_time: str,
             horizon: timedelta = DEFAULT_HORIZON) -> dict[str, Any]:
    start = parse_instant(source_time)
    extensions = [source_timestamp_extension(source_time)]
    if region:
        extensions.append(region_extension(region))
    return {
        "resourceType": "Schedule", "id": key.schedule_id, "meta": {"profile": [PROFILE_SCHEDULE]},
        "extension": extensions, "active": True,
        "serviceCategory": [{"coding": [category.group_coding()]}],
        "serviceType": [{"coding": [category.coding()]}],
        "actor": [{"reference": f"HealthcareService/{key.service_id}"}, {"reference": f"Location/{key.location_id}"}],
        "planningHorizon": {"start": instant(start), "end": instant(start + horizon)},
    }


def slot(key: UnitKey, index: int, category: Category, status: str, source_time: str,
         horizon: timedelta = DEFAULT_HORIZON) -> dict[str, Any]:
    """One unit of capacity, valid from the source's confirmation until the planning horizon."""
    start = parse_instant(source_time)
    resource: dict[str, Any] = {
        "resourceType": "Slot", "id": key.slot_id(index), "meta": {"profile": [PROFILE_SLOT]},
        "extension": [source_timestamp_extension(source_time)],
        "serviceCategory": [{"coding": [category.group_coding()]}],
        "serviceType": [{"coding": [category.coding()]}],
        "schedule": {"reference": f"Schedule/{key.schedule_id}"},
        "status": status, "start": instant(start), "end": instant(start + horizon),
    }
    if status == UNAVAILABLE:
        resource["comment"] = CLOSED_COMMENT
    return resource


# -- reading -------------------------------------------------------------------------------------------


def extension_value(resource: dict[str, Any], url: str) -> Any:
    for extension in resource.get("extension", []):
        if isinstance(extension, dict) and extension.get("url") == url:
            return next((v for k, v in extension.items() if k.startswith("value")), None)
    return None


def source_timestamp(resource: dict[str, Any]) -> str | None:
    value = extension_value(resource, SOURCE_TIMESTAMP_EXTENSION)
    return value if isinstance(value, str) else None


def region_code(resource: dict[str, Any]) -> str | None:
    value = extension_value(resource, REGION_EXTENSION)
    return value.get("code") if isinstance(value, dict) else None


def category_code(resource: dict[str, Any]) -> str | None:
    for concept in resource.get("serviceType", []) or resource.get("type", []):
        for coding in concept.get("coding", []):
            if coding.get("system") == CATEGORY_SYSTEM:
                return coding.get("code")
    return None
