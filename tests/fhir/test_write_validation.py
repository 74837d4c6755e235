"""Validation on write: every create, update and transaction entry is validated against the base spec and the
profiles of its meta.profile; errors -> 422 and nothing written (strict), warnings come back in the response
OperationOutcome; lenient accepts errors as warnings; off skips the validator."""

from __future__ import annotations

from typing import Any

import pytest

from conformance import fhirjson
from gateway.fhir.errors import FhirError
from gateway.fhir.write_checks import WriteChecks
from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import assert_outcome, store_fingerprint

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
NOT_LOADED = "http://example.org/fhir/StructureDefinition/not-loaded-here"


def unprofiled_heart_rate(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "effectiveDateTime": "2024-05-01T10:00:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        **extra,
    }


def test_binding_error_is_422_and_nothing_is_written(client, services):
    before = store_fingerprint(services)
    body = {"resourceType": "Patient", "gender": "sometimes"}
    outcome = assert_outcome(client.post("/fhir/Patient", content=fhirjson.dumps(body), headers=FHIR_JSON),
                             422, "code-invalid")
    assert ["Patient.gender"] in [issue.get("expression") for issue in outcome["issue"]]
    assert store_fingerprint(services) == before


def test_claimed_profile_is_enforced_on_create_and_update(client, services):
    before = store_fingerprint(services)
    claimed = unprofiled_heart_rate(meta={"profile": [VITAL_SIGNS]})
    created = client.post("/fhir/Observation", content=fhirjson.dumps(claimed), headers=FHIR_JSON)
    outcome = assert_outcome(created, 422, "required")
    assert any(issue.get("expression") == ["Observation"] and "Observation.category: minimum required = 1"
               in issue["diagnostics"] for issue in outcome["issue"]), outcome
    updated = client.put("/fhir/Observation/hr-1", content=fhirjson.dumps({**claimed, "id": "hr-1"}),
                         headers=FHIR_JSON)
    assert updated.status_code == 422
    assert store_fingerprint(services) == before
    assert client.post("/fhir/Observation", content=fhirjson.dumps(unprofiled_heart_rate()),
                       headers=FHIR_JSON).status_code == 201


def test_transaction_entry_with_an_error_rolls_back_everything(client, services):
    before = store_fingerprint(services)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "both"}, "request": {"method": "POST", "url": "Patient"}},
    ]}
    response = client.post("/fhir", content=fhirjson.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 422, response.text
    assert store_fingerprint(services) == before


def test_profile_not_loaded_is_a_warning_returned_with_the_write(client):
    body = {"resourceType": "Patient", "meta": {"profile": [NOT_LOADED]}}
    response = client.post("/fhir/Patient", content=fhirjson.dumps(body),
                           headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert response.status_code == 201, response.text
    issues = response.json()["issue"]
    assert [(i["severity"], i["code"]) for i in issues if NOT_LOADED in i["diagnostics"]] == [("warning", "not-found")]


def test_lenient_accepts_errors_as_returned_issues_and_off_skips_the_validator(services):
    invalid = {"resourceType": "Patient", "gender": "sometimes"}
    strict = WriteChecks(services.resource_types, None, services.validation, "strict")
    with pytest.raises(FhirError) as refused:
        strict.check(dict(invalid), "Patient", None, require_id=False)
    assert refused.value.status == 422
    lenient = WriteChecks(services.resource_types, None, services.validation, "lenient")
    returned = lenient.check(dict(invalid), "Patient", None, require_id=False)
    assert ["Patient.gender"] in [issue.expression for issue in returned]
    off = WriteChecks(services.resource_types, None, services.validation, "off")
    assert off.check(dict(invalid), "Patient", None, require_id=False) == []
