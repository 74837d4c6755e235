"""Query-restricted scopes: the in-memory matcher agrees with search semantics, and the scope stage enforces the
restriction on reads, searches, includes, history and writes over HTTP with real tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from conformance.packages import PackageSet
from conformance.typemodel import TypeModel
from gateway.app import build_services, create_app
from gateway.auth.scope_restrictions import RestrictionMatcher
from gateway.search.definitions import SearchParameterRegistry
from tests.auth.fixtures import obtain_auth_header
from tests.fhir.conftest import core_settings

LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(id_: str, category: dict[str, Any], patient: str = "p1") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": id_, "status": "final", "category": [category],
            "code": {"text": id_}, "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture(scope="module")
def matcher(packages: PackageSet) -> RestrictionMatcher:
    return RestrictionMatcher(SearchParameterRegistry(packages, TypeModel.from_packages(packages)))


@pytest.mark.parametrize(("restriction", "covered"), [
    ((("category", "laboratory"),), True),
    ((("category", f"{CATEGORY}|laboratory"),), True),
    ((("category", "http://other|laboratory"),), False),
    ((("category", "vital-signs"),), False),
    ((("category", "vital-signs,laboratory"),), True),
    ((("category", "laboratory"), ("subject", "Patient/p1")), True),
    ((("category", "laboratory"), ("subject", "Patient/p2")), False),
    ((("status", "final"),), True),
])
def test_matcher_follows_search_semantics(matcher: RestrictionMatcher, restriction: Any, covered: bool) -> None:
    assert matcher.covers(observation("o", LAB), [restriction]) is covered


def test_alternatives_are_or_and_empty_means_unrestricted(matcher: RestrictionMatcher) -> None:
    lab = observation("o", LAB)
    assert matcher.covers(lab, [(("category", "vital-signs"),), (("category", "laboratory"),)])
    assert matcher.covers(lab, [])


@pytest.mark.parametrize("restriction", [
    (("code:text", "glucose"),),          # modifier
    (("date", "gt2020"),),                # date parameter, prefix
    (("subject.name", "x"),),             # chain
    (("unknown-param", "x"),),            # not a parameter
    (("_count", "5"),),                   # a result parameter, not a filter
])
def test_unenforceable_restrictions_cover_nothing(matcher: RestrictionMatcher, restriction: Any) -> None:
    assert not matcher.covers(observation("o", LAB), [restriction])
    assert matcher.search_params("Observation", (restriction,)) == []


# -- over HTTP -------------------------------------------------------------------------------------------------

RESTRICTED = "system/Observation.crus?category=laboratory system/Patient.rs"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('scopes')) / 'gateway.db'}"
    services = build_services(core_settings(url))
    app = create_app(services=services)
    with TestClient(app) as client:
        admin = obtain_auth_header(app, url)
        client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=admin)
        for id_, category in (("lab1", LAB), ("lab2", LAB), ("vital1", VITAL)):
            response = client.put(f"/fhir/Observation/{id_}", json=observation(id_, category), headers=admin)
            assert response.status_code in (200, 201), response.text
        yield client, url


@pytest.fixture(scope="module")
def restricted(gateway: tuple[TestClient, str]) -> dict[str, str]:
    client, url = gateway
    return obtain_auth_header(client.app, url, RESTRICTED)


def test_read_inside_the_restriction(gateway: tuple[TestClient, str], restricted: dict[str, str]) -> None:
    assert gateway[0].get("/fhir/Observation/lab1", headers=restricted).status_code == 200


def test_read_outside_the_restriction_is_403(gateway: tuple[TestClient, str], restricted: dict[str, str]) -> None:
    response = gateway[0].get("/fhir/Observation/vital1", headers=restricted)
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert "query restriction" in response.json()["issue"][0]["diagnostics"]


def test_search_returns_only_covered_matches_with_exact_total(
    gateway: tuple[TestClient, str], restricted: dict[str, str]
) -> None:
    bundle = gateway[0].get("/fhir/Observation?_total=accurate", headers=restricted).json()
    assert sorted(entry["resource"]["id"] for entry in bundle["entry"]) == ["lab1", "lab2"]
    assert bundle["total"] == 2


def test_revinclude_of_a_restricted_type_drops_uncovered_resources(
    gateway: tuple[TestClient, str], restricted: dict[str, str]
) -> None:
    bundle = gateway[0].get("/fhir/Patient?_id=p1&_revinclude=Observation:subject", headers=restricted).json()
    included = sorted(e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include")
    assert included == ["lab1", "lab2"]


def test_history_of_an_uncovered_resource_is_empty(
    gateway: tuple[TestClient, str], restricted: dict[str, str]
) -> None:
    bundle = gateway[0].get("/fhir/Observation/vital1/_history", headers=restricted).json()
    assert bundle.get("entry", []) == []


def test_create_outside_the_restriction_is_refused_and_not_written(
    gateway: tuple[TestClient, str], restricted: dict[str, str]
) -> None:
    client, url = gateway
    response = client.put("/fhir/Observation/vital2", json=observation("vital2", VITAL), headers=restricted)
    assert response.status_code == 403
    admin = obtain_auth_header(client.app, url)
    assert client.get("/fhir/Observation/vital2", headers=admin).status_code == 404


def test_update_cannot_move_a_resource_into_the_restriction(
    gateway: tuple[TestClient, str], restricted: dict[str, str]
) -> None:
    client, url = gateway
    response = client.put("/fhir/Observation/vital1", json=observation("vital1", LAB), headers=restricted)
    assert response.status_code == 403
    admin = obtain_auth_header(client.app, url)
    assert client.get("/fhir/Observation/vital1", headers=admin).json()["category"] == [VITAL]


def test_create_inside_the_restriction_succeeds(gateway: tuple[TestClient, str], restricted: dict[str, str]) -> None:
    response = gateway[0].post("/fhir/Observation", json=observation("x", LAB), headers=restricted)
    assert response.status_code == 201, response.text


def test_operations_need_an_unrestricted_scope(gateway: tuple[TestClient, str], restricted: dict[str, str]) -> None:
    response = gateway[0].get("/fhir/Observation/lab1/$explain-access", headers=restricted)
    assert response.status_code == 403
