"""Every kind of bad input gets a clear OperationOutcome with the right status and issue code, and writes nothing."""

from __future__ import annotations

import pytest

from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import assert_outcome, store_fingerprint

XML = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+json"}

CASES = [
    # (name, method, url, body bytes, headers, status, issue code)
    ("malformed JSON", "POST", "/fhir/Patient", b'{"resourceType": "Patient",', FHIR_JSON, 400, "structure"),
    (
        "malformed XML",
        "POST",
        "/fhir/Patient",
        b'<Patient xmlns="http://hl7.org/fhir"><id value="x"/>',
        XML,
        400,
        "structure",
    ),
    (
        "DOCTYPE in XML",
        "POST",
        "/fhir/Patient",
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x "y">]><Patient xmlns="http://hl7.org/fhir"/>',
        XML,
        400,
        "structure",
    ),
    (
        "wrong resourceType for URL",
        "POST",
        "/fhir/Patient",
        b'{"resourceType": "Observation", "status": "final"}',
        FHIR_JSON,
        400,
        "invalid",
    ),
    ("unknown resourceType", "POST", "/fhir/Patient", b'{"resourceType": "Patientt"}', FHIR_JSON, 400, "invalid"),
    (
        "body id differs from URL id",
        "PUT",
        "/fhir/Patient/a1",
        b'{"resourceType": "Patient", "id": "b2"}',
        FHIR_JSON,
        400,
        "invalid",
    ),
    ("update without body id", "PUT", "/fhir/Patient/a1", b'{"resourceType": "Patient"}', FHIR_JSON, 400, "required"),
    (
        "invalid id in URL",
        "PUT",
        "/fhir/Patient/bad_id!",
        b'{"resourceType": "Patient", "id": "bad_id!"}',
        FHIR_JSON,
        400,
        "invalid",
    ),
    (
        "id longer than 64",
        "PUT",
        "/fhir/Patient/" + "a" * 65,
        b'{"resourceType": "Patient", "id": "' + b"a" * 65 + b'"}',
        FHIR_JSON,
        400,
        "invalid",
    ),
    (
        "duplicate JSON keys",
        "POST",
        "/fhir/Patient",
        b'{"resourceType": "Patient", "gender": "male", "gender": "female"}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "NaN",
        "POST",
        "/fhir/Observation",
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": NaN}}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "Infinity",
        "POST",
        "/fhir/Observation",
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
        b'"valueQuantity": {"value": Infinity}}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "number sent as string",
        "POST",
        "/fhir/Observation",
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "12"}}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "boolean sent as string",
        "POST",
        "/fhir/Patient",
        b'{"resourceType": "Patient", "active": "true"}',
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "nesting deeper than 100",
        "POST",
        "/fhir/Patient",
        b'{"resourceType": "Patient", "extension": ' + b'[{"extension": ' * 60 + b"[]" + b"}]" * 60 + b"}",
        FHIR_JSON,
        400,
        "structure",
    ),
    (
        "unknown content type",
        "POST",
        "/fhir/Patient",
        b"resourceType=Patient",
        {"Content-Type": "text/plain"},
        415,
        "not-supported",
    ),
    ("not an object", "POST", "/fhir/Patient", b"[1, 2]", FHIR_JSON, 400, "structure"),
    (
        "unknown element",
        "POST",
        "/fhir/Patient",
        b'{"resourceType": "Patient", "colour": "blue"}',
        FHIR_JSON,
        400,
        "structure",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_rejected_and_writes_nothing(client, services, case):
    _, method, url, body, headers, status, code = case
    before = store_fingerprint(services)
    response = client.request(method, url, content=body, headers=headers)
    assert_outcome(response, status, code)
    assert store_fingerprint(services) == before


def test_body_larger_than_limit_is_413(client, services):
    before = store_fingerprint(services)
    limit = services.settings.max_body
    padding = b" " * (limit + 1)
    response = client.post("/fhir/Patient", content=b'{"resourceType": "Patient"}' + padding, headers=FHIR_JSON)
    assert_outcome(response, 413, "too-costly")
    assert store_fingerprint(services) == before


def test_failed_transaction_entry_rolls_back_everything(client, services):
    before = store_fingerprint(services)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0c3d5f9e-0000-4000-8000-000000000001",
                "resource": {"resourceType": "Patient", "name": [{"family": "Rollback"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "not-a-status-but-a-string-is-fine-structurally",
                    "code": {"text": "x"},
                    "valueQuantity": {"value": "7"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    body = assert_outcome(response, 400, "structure")
    assert "entry 1" in body["issue"][0]["diagnostics"]
    assert store_fingerprint(services) == before


def test_errors_can_be_xml(client):
    response = client.get("/fhir/Patient/nope", headers={"Accept": "application/fhir+xml"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/fhir+xml")
    assert b"<OperationOutcome" in response.content
