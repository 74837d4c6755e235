"""The capacity package: every category the issue lists, a ConceptMap entry for each, and conformance
resources and demo instances that the gateway's validator accepts against the profiles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conformance.packages import PackageSet, default_package_paths
from conformance.validator.validator import Validator
from gateway.capacity import model
from gateway.capacity.demo import demo_providers
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.urls import BASE
from tests.capacity.conftest import CAPACITY_PACKAGE

# The issue's list (Kamerbrief): group -> the leaf categories it must offer at least.
ISSUE_CATEGORIES = {
    "rav": {"rav-ambulance"}, "hap": {"hap-triage", "hap-consult"},
    "huisarts": {"huisarts-consult", "huisarts-inschrijving"}, "ziekenhuis": {"zh-seh", "zh-kliniek", "zh-ic"},
    "wijkverpleging": {"wijkverpleging-acuut"}, "farmacie": {"farmacie-spoed"},
    "ggz": {"ggz-crisisbed", "ggz-crisisdienst"}, "elv": {"elv-laagcomplex", "elv-hoogcomplex", "elv-palliatief"},
    "grz": {"grz-bed"}, "crisis-verpleeghuis": {"crisisbed-verpleeghuis"},
    "crisis-gehandicaptenzorg": {"crisisbed-gehandicaptenzorg"}, "geboortezorg": {"geboortezorg-verloskamer"},
}


@pytest.fixture(scope="module")
def packages() -> PackageSet:
    return PackageSet.from_paths([*default_package_paths(), CAPACITY_PACKAGE])


@pytest.fixture(scope="module")
def terms(packages: PackageSet) -> CapacityTerms:
    return CapacityTerms.from_packages(packages)


@pytest.fixture(scope="module")
def validator(packages: PackageSet) -> Validator:
    return Validator(packages)


def _errors(outcome: dict) -> list[dict]:
    return [i for i in outcome["issue"] if i["severity"] in {"error", "fatal"}]


def test_every_issue_category_is_in_the_code_system(terms: CapacityTerms) -> None:
    assert set(terms.groups) == set(ISSUE_CATEGORIES)
    for group, leaves in ISSUE_CATEGORIES.items():
        assert leaves <= set(terms.groups[group]), group
    assert all(c.max_age_minutes > 0 and c.unit in {"bed", "vehicle", "consult", "team", "acceptance"}
               for c in terms.categories.values())


def test_regions_are_eleven_with_symmetric_neighbours(terms: CapacityTerms) -> None:
    assert len(terms.regions) == 11
    for code, region in terms.regions.items():
        for neighbour in region.neighbours:
            assert code in terms.regions[neighbour].neighbours, (code, neighbour)


def test_concept_map_covers_every_category(packages: PackageSet, terms: CapacityTerms) -> None:
    concept_map = packages.resolve(f"{BASE}/ConceptMap/capacity-category-to-organization-type")
    assert concept_map is not None
    elements = {e["code"]: e for g in concept_map["group"] for e in g["element"]}
    assert set(elements) == set(terms.categories)
    assert {t["code"] for t in elements["hap-triage"]["target"]} == {"N6"}
    assert {t["code"] for t in elements["zh-ic"]["target"]} >= {"V4", "V5", "V6"}


def test_conformance_resources_are_valid(packages: PackageSet, validator: Validator) -> None:
    ours = [entry for package in packages.packages if package.name == "zcc-gateway.capacity"
            for entry in package.entries]
    assert len(ours) >= 20
    package = next(p for p in packages.packages if p.name == "zcc-gateway.capacity")
    for entry in ours:
        resource = package.resource(entry)
        assert _errors(validator.validate(resource)) == [], entry.source


def test_demo_resources_conform_to_the_profiles(terms: CapacityTerms, validator: Validator) -> None:
    provider = demo_providers(terms, "zuidwest", per_category=1)[0]
    category = terms.categories[provider.key.category]
    region = terms.regions["zuidwest"]
    now = model.instant(datetime.now(UTC))
    resources = [*provider.resources, model.schedule(provider.key, category, region, now),
                 model.slot(provider.key, 0, category, model.FREE, now)]
    for resource in resources:
        assert _errors(validator.validate(resource)) == [], resource["resourceType"]


def test_a_slot_with_an_unknown_category_fails_the_profile(terms: CapacityTerms, validator: Validator) -> None:
    key = model.UnitKey("12345678", "ic", "zh-ic")
    slot = model.slot(key, 0, terms.categories["zh-ic"], model.FREE, "2025-03-01T10:00:00Z")
    slot["serviceType"] = [{"coding": [{"system": f"{BASE}/CodeSystem/capacity-category", "code": "bogus"}]}]
    errors = _errors(validator.validate(slot))
    assert any("capacity-category" in i["details"]["text"] and i["expression"] == ["Slot.serviceType[0]"]
               for i in errors), errors
