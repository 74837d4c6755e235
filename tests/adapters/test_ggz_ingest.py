"""End to end: `POST /ingest/ggz` with a BgGGZ Bundle; what is stored carries the ggz labels, and the consent
stage withholds it from a reader outside the ggz while the same reader gets unlabelled (VVT) data."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from gateway.app import build_services
from gateway.consent.describe import security_labels
from gateway.consent.model import Effect
from gateway.consent.pdp import decide_for_patient
from gateway.consent.policy import load_policy
from gateway.settings import Settings
from tests.adapters.stu3_fixtures import ggz_fixtures, instantiate, nl_core_package_paths, stu3_bundle
from tests.consent.builders import NOW, contact, facts, request
from tests.consent.builders import resource as consent_resource
from tests.ingest.conftest import app, client, database_url, service  # noqa: F401 - fixtures
from tests.reference import requires_reference

pytestmark = requires_reference


@pytest.fixture(scope="module")
def services(database_url: str):  # noqa: F811  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, base_url="http://testserver/fhir",
                        package_paths=nl_core_package_paths())
    return build_services(settings)
GGZ_SECURITY = {"R", "PSY"}
OBSERVATION_FIXTURE = "ggz-alcoholuse-Drinkt-alcohol.xml"
PATIENT_FIXTURE = "ggz-nl-core-patient-XXX-Walsen.xml"
# Fixtures that cannot pass nl-core, with the reason (see docs/ingest.md and test_stu3_fixture_oracle.py): the
# status of the assessment-scale observations is specified with code `final` in code system
# 2.16.840.1.113883.2.4.3.11.60.40.4.15.1, which is the ManchetType (cuff type) code list - a defect of the fixture.
REJECTED = {"ggz-generalmeasurement-": "Unknown code 'final'"}


def _defect(path) -> str | None:  # type: ignore[no-untyped-def]
    return next((why for prefix, why in REJECTED.items() if path.name.startswith(prefix)), None)


def test_ingested_ggz_data_is_labelled_and_withheld_from_a_non_ggz_reader(client: TestClient, services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    raw = instantiate((next(p for p in ggz_fixtures() if p.name == OBSERVATION_FIXTURE)).read_bytes())
    response = client.post("/ingest/ggz", content=raw, headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 201, response.text
    location = next(e["response"]["location"] for e in response.json()["entry"][1:]
                    if e["response"]["location"].startswith("Observation/"))
    observation_id = location.split("/")[1]
    with services.store.read(False) as connection:
        stored = services.store.get(connection, "Observation", observation_id).resource()
    assert {label["code"] for label in stored["meta"]["security"]} >= GGZ_SECURITY
    assert stored["meta"]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/nl-core-AlcoholUse"]
    read = client.get(f"/fhir/Observation/{observation_id}")  # the test client: a HAP triagist, not ggz
    assert read.status_code == 404, read.text  # withheld: not even its existence is disclosed
    assert "Walsen" not in read.text and "alcohol" not in read.text.lower()
    # why: with an active zcc contact a non-ggz triagist gets ordinary data, but the stored labels make the
    # consent rules filter this resource (`ggz-filtered`); a ggz role gets it
    labels = security_labels(stored)
    active = facts(contacts=[contact()])
    ggz_data = replace(consent_resource(resource_type="Observation"), labels=labels)
    ordinary = replace(ggz_data, labels=frozenset())
    policy = load_policy()
    assert decide_for_patient(policy, request(), ordinary, active, NOW).effect is Effect.PERMIT
    filtered = decide_for_patient(policy, request(), ggz_data, active, NOW)
    assert (filtered.effect, filtered.rule_id) == (Effect.PERMIT_FILTERED, "ggz-filtered")
    assert decide_for_patient(policy, request(role="ggz-triagist"), ggz_data, active, NOW).effect is Effect.PERMIT


def test_ggz_bundle_of_all_fixtures_is_accepted_with_every_resource_labelled(client: TestClient, services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    sound = [p for p in ggz_fixtures() if _defect(p) is None]
    bundle = stu3_bundle([instantiate(p.read_bytes()) for p in sound], "collection")
    # lenient: the BgGGZ folder is not a closed set (e.g. CareTeam names organisations and roles that are not
    # in it), so its references outside the Bundle are warnings here, not errors
    response = client.post("/ingest/ggz?mode=lenient", content=json.dumps(bundle).encode(),
                           headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 201, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"][1:]]
    # every resource, Bals's legal status as its own Condition (zib2020 LegalSituation), and the Provenance
    assert len(locations) == len(sound) + 2
    assert sum(location.startswith("Condition/") for location in locations) == 1
    with services.store.read(False) as connection:
        for location in locations:
            resource_type, resource_id = location.split("/")[:2]
            if resource_type == "Provenance":
                continue
            stored = services.store.get(connection, resource_type, resource_id).resource()
            assert {label["code"] for label in stored["meta"]["security"]} >= GGZ_SECURITY, location


def test_defective_ggz_fixtures_are_rejected_with_the_precise_reason(client: TestClient) -> None:  # noqa: F811
    for path in ggz_fixtures():
        why = _defect(path)
        if why is None:
            continue
        response = client.post("/ingest/ggz", content=instantiate(path.read_bytes()),
                               headers={"Content-Type": "application/fhir+xml"})
        assert response.status_code == 422, path.name
        assert any(why in issue["diagnostics"] for issue in response.json()["issue"]), (path.name, response.text)
