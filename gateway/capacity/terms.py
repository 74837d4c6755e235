"""The capacity categories and ROAZ regions, read from the CodeSystems of the capacity package (never
hand-listed: the package is the one definition)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conformance.packages import PackageSet
from gateway.capacity.urls import CATEGORY_SYSTEM, REGION_SYSTEM

DEFAULT_MAX_AGE_MINUTES = 240


@dataclass(frozen=True)
class Category:
    code: str
    display: str
    group: str  # the group concept (HealthcareService.category, Slot.serviceCategory)
    group_display: str
    unit: str  # bed | vehicle | consult | team | acceptance
    max_age_minutes: int

    def coding(self) -> dict[str, str]:
        return {"system": CATEGORY_SYSTEM, "code": self.code, "display": self.display}

    def group_coding(self) -> dict[str, str]:
        return {"system": CATEGORY_SYSTEM, "code": self.group, "display": self.group_display}


@dataclass(frozen=True)
class Region:
    code: str
    display: str
    neighbours: tuple[str, ...]

    def coding(self) -> dict[str, str]:
        return {"system": REGION_SYSTEM, "code": self.code, "display": self.display}


class MissingPackage(RuntimeError):
    """The capacity package (profiles/nictiz/capacity) is not on the package path."""


@dataclass(frozen=True)
class CapacityTerms:
    categories: dict[str, Category]  # leaf code -> Category
    groups: dict[str, tuple[str, ...]]  # group code -> leaf codes
    regions: dict[str, Region]

    @classmethod
    def from_packages(cls, packages: PackageSet) -> CapacityTerms:
        category_system, region_system = packages.resolve(CATEGORY_SYSTEM), packages.resolve(REGION_SYSTEM)
        if category_system is None or region_system is None:
            raise MissingPackage("the capacity package (profiles/nictiz/capacity) must be on ZCC_PACKAGE_PATH")
        categories: dict[str, Category] = {}
        groups: dict[str, tuple[str, ...]] = {}
        for group in category_system.get("concept", []):
            leaves = []
            for concept in group.get("concept", []):
                props = _properties(concept)
                categories[concept["code"]] = Category(
                    concept["code"], concept.get("display", concept["code"]), group["code"],
                    group.get("display", group["code"]), str(props.get("unit", "bed")),
                    int(props.get("maxAgeMinutes", DEFAULT_MAX_AGE_MINUTES)))
                leaves.append(concept["code"])
            groups[group["code"]] = tuple(leaves)
        regions = {concept["code"]: _region(concept) for concept in region_system.get("concept", [])}
        return cls(categories, groups, regions)

    def expand_categories(self, codes: list[str]) -> list[str]:
        """Leaf codes for a mix of leaf and group codes; raises KeyError on an unknown code."""
        leaves: list[str] = []
        for code in codes:
            if code in self.categories:
                leaves.append(code)
            elif code in self.groups:
                leaves.extend(self.groups[code])
            else:
                raise KeyError(code)
        return list(dict.fromkeys(leaves))

    def expand_regions(self, codes: list[str], neighbours: bool) -> list[str]:
        result: list[str] = []
        for code in codes:
            if code not in self.regions:
                raise KeyError(code)
            result.append(code)
            if neighbours:
                result.extend(self.regions[code].neighbours)
        return list(dict.fromkeys(result))


def _properties(concept: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prop in concept.get("property", []):
        value = next((v for k, v in prop.items() if k.startswith("value")), None)
        values[prop.get("code", "")] = value
    return values


def _region(concept: dict[str, Any]) -> Region:
    neighbours = tuple(p["valueCode"] for p in concept.get("property", []) if p.get("code") == "neighbour")
    return Region(concept["code"], concept.get("display", concept["code"]), neighbours)
