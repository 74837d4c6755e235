"""batch and transaction: urn:uuid and conditional references, ordering, atomicity, response Bundles."""

from __future__ import annotations

import uuid

from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import assert_outcome, store_fingerprint


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def test_transaction_resolves_urn_uuid_references_and_keeps_entry_order(client):
    patient_url, encounter_url = _uuid(), _uuid()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": encounter_url,
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                    "subject": {"reference": patient_url},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "fullUrl": patient_url,
                "resource": {"resourceType": "Patient", "name": [{"family": "Transactie"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [entry["response"]["status"] for entry in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    encounter_location = result["entry"][0]["response"]["location"]
    patient_location = result["entry"][1]["response"]["location"]
    assert encounter_location.startswith("Encounter/") and patient_location.startswith("Patient/")
    encounter = client.get(f"/fhir/{encounter_location.split('/_history')[0]}").json()
    assert encounter["subject"]["reference"] == patient_location.split("/_history")[0]


def test_transaction_conditional_reference_and_conditional_create(client):
    value = uuid.uuid4().hex
    client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": value}]},
        headers=FHIR_JSON,
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "hr"},
                    "subject": {"reference": f"Patient?identifier=urn:t|{value}"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": value}]},
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier=urn:t|{value}"},
            },
        ],
    }
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[1]["response"]["status"] == "200 OK"  # matched, not created again
    observation = client.get(f"/fhir/{entries[0]['response']['location'].split('/_history')[0]}").json()
    assert observation["subject"]["reference"] == entries[1]["response"]["location"].split("/_history")[0]


def test_transaction_with_dangling_urn_reference_fails_atomically(client, services):
    before = store_fingerprint(services)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": _uuid()},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    assert_outcome(client.post("/fhir", json=bundle, headers=FHIR_JSON), 400, "not-found")
    assert store_fingerprint(services) == before


def test_batch_entries_succeed_or_fail_independently(client):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/definitely-missing"}},
            {"request": {"method": "GET", "url": "metadata"}},
        ],
    }
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "batch-response"
    assert [entry["response"]["status"].split()[0] for entry in result["entry"]] == ["201", "404", "200"]
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


def test_transaction_with_two_changes_to_one_resource_is_rejected(client):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": "dup1"},
                "request": {"method": "PUT", "url": "Patient/dup1"},
            },
            {"request": {"method": "DELETE", "url": "Patient/dup1"}},
        ],
    }
    assert_outcome(client.post("/fhir", json=bundle, headers=FHIR_JSON), 400, "duplicate")


def test_post_to_base_needs_batch_or_transaction(client):
    assert_outcome(
        client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}, headers=FHIR_JSON), 400, "invalid"
    )
