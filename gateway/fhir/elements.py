"""`_summary` and `_elements`: subsets of a resource, marked SUBSETTED as the spec requires."""

from __future__ import annotations

from typing import Any

from conformance.packages import PackageSet
from gateway.fhir.errors import FhirError

_MANDATORY = {"resourceType", "id", "meta"}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


class SummaryElements:
    """Top-level elements flagged `isSummary` in each core StructureDefinition (computed once per type)."""

    def __init__(self, packages: PackageSet) -> None:
        self.packages = packages
        self._cache: dict[str, frozenset[str]] = {}

    def for_type(self, resource_type: str) -> frozenset[str]:
        if resource_type not in self._cache:
            names: set[str] = set()
            definition = self.packages.structure_definition(resource_type) or {}
            for element in definition.get("snapshot", {}).get("element", []):
                parts = element["path"].split(".")
                if len(parts) == 2 and element.get("isSummary"):
                    name = parts[1]
                    if name.endswith("[x]"):
                        stem = name[:-3]
                        for type_ in element.get("type", []):
                            code = type_["code"]
                            names.add(stem + code[0].upper() + code[1:])
                    else:
                        names.add(name)
            self._cache[resource_type] = frozenset(names)
        return self._cache[resource_type]


def _mark_subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [tag for tag in meta.get("tag", []) if tag.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, dict(SUBSETTED)]
    resource["meta"] = meta
    return resource


def apply_summary(resource: dict[str, Any], mode: str, summary: SummaryElements) -> dict[str, Any]:
    if mode == "false":
        return resource
    if mode == "text":
        kept = {k: v for k, v in resource.items() if k in _MANDATORY or k == "text"}
    elif mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "true":
        allowed = summary.for_type(resource["resourceType"])
        kept = {k: v for k, v in resource.items() if k in _MANDATORY or k.lstrip("_") in allowed}
    else:
        raise FhirError(
            400, "invalid", f"_summary must be true, false, text, data or count, not '{mode}'", ["_summary"]
        )
    return _mark_subsetted(kept)


def apply_elements(resource: dict[str, Any], elements: list[str]) -> dict[str, Any]:
    wanted = set()
    for item in elements:
        name = item.strip()
        if "." in name:  # `Patient.name` form: keep the top-level name
            name = name.split(".", 1)[1].split(".")[0]
        wanted.add(name)
    kept = {k: v for k, v in resource.items() if k in _MANDATORY or k.lstrip("_") in wanted}
    return _mark_subsetted(kept)
