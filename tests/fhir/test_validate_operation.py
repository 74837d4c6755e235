"""`$validate` at system, type and instance level: resource or Parameters body, JSON and XML, `profile` and `mode`;
always an OperationOutcome, never a write."""

from __future__ import annotations

from typing import Any

from conformance import fhirjson
from gateway.fhir import formats
from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import store_fingerprint

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
FHIR_XML = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Jansen"}], "gender": "female", **extra}


def heart_rate() -> dict[str, Any]:
    """An Observation that is valid for the base spec but not for the vital-signs profile (no category)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2024-05-01T10:00:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def missing_category(issue: dict[str, Any]) -> bool:
    """Missing elements are reported on their parent (as the HL7 validator does), naming the element."""
    return issue["expression"] == ["Observation"] and "Observation.category: minimum required = 1" in \
        issue["details"]["text"]


def parameters(resource: dict[str, Any], **arguments: str) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"name": "resource", "resource": resource}]
    parts += [{"name": name, ("valueUri" if name == "profile" else "valueCode"): value}
              for name, value in arguments.items()]
    return {"resourceType": "Parameters", "parameter": parts}


def post(client, path: str, body: dict[str, Any], **params: str):  # type: ignore[no-untyped-def]
    return client.post(f"/fhir/{path}", content=fhirjson.dumps(body), headers=FHIR_JSON, params=params)


def errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [issue for issue in outcome["issue"] if issue["severity"] in {"error", "fatal"}]


def test_valid_resource_is_all_ok_at_every_level(client, services):
    before = store_fingerprint(services)
    for path in ("$validate", "Patient/$validate"):
        response = post(client, path, patient())
        assert response.status_code == 200, response.text
        assert errors(response.json()) == []
    assert store_fingerprint(services) == before


def test_invalid_resource_reports_errors_with_expression_and_writes_nothing(client, services):
    before = store_fingerprint(services)
    response = post(client, "Patient/$validate", patient(gender="unknown-ish", birthDate="1970-13-01"))
    assert response.status_code == 200
    found = {issue["expression"][0] for issue in errors(response.json())}
    assert {"Patient.gender", "Patient.birthDate"} <= found
    assert store_fingerprint(services) == before


def test_profile_parameter_in_query_and_in_parameters(client):
    assert errors(post(client, "Observation/$validate", heart_rate()).json()) == []
    by_query = errors(post(client, "Observation/$validate", heart_rate(), profile=VITAL_SIGNS).json())
    by_parameters = errors(post(client, "Observation/$validate", parameters(heart_rate(), profile=VITAL_SIGNS)).json())
    assert any(missing_category(i) for i in by_query), by_query
    assert by_query == by_parameters


def test_meta_profile_is_validated_without_asking(client):
    claimed = {**heart_rate(), "meta": {"profile": [VITAL_SIGNS]}}
    assert any(missing_category(i) for i in errors(post(client, "$validate", claimed).json()))


def test_unknown_requested_profile_is_an_error(client):
    outcome = post(client, "Patient/$validate", patient(), profile="http://example.org/StructureDefinition/nope").json()
    assert [i["code"] for i in errors(outcome)] == ["not-supported"]


def test_type_of_the_url_must_match(client):
    outcome = post(client, "Observation/$validate", patient()).json()
    assert any(i["expression"] == ["resourceType"] for i in errors(outcome))


def test_bundle_entries_are_validated_with_their_location(client):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:5b1a7f02-1c1a-4f56-8b1e-3d0a3b0c9a11", "resource": patient()},
        {"fullUrl": "urn:uuid:6c2b8f13-2d2b-4a67-9c2f-4e1b4c1d0b22", "resource": patient(gender="x")},
    ]}
    outcome = post(client, "Bundle/$validate", bundle).json()
    assert [i["expression"] for i in errors(outcome)] == [["Bundle.entry[1].resource.gender"]]


def test_xml_in_and_out(client, services):
    body = formats.serialize(patient(gender="x"), formats.XML, False, services.type_model)
    response = client.post("/fhir/Patient/$validate", content=body, headers=FHIR_XML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(formats.XML)
    outcome = formats.parse_body(response.content, formats.XML, services.type_model)
    assert [i["expression"] for i in errors(outcome)] == [["Patient.gender"]]


def test_instance_level_modes(client):
    created = post(client, "Patient", patient())
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]
    same = post(client, f"Patient/{patient_id}/$validate", patient(id=patient_id), mode="update").json()
    assert errors(same) == []
    other = post(client, f"Patient/{patient_id}/$validate", patient(id="someone-else"), mode="update").json()
    assert [i["expression"] for i in errors(other)] == [["Patient.id"]]
    delete = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    deletable = post(client, f"Patient/{patient_id}/$validate", delete)
    assert deletable.status_code == 200 and errors(deletable.json()) == []
    assert post(client, "Patient/no-such-patient/$validate", delete).status_code == 404


def test_bad_requests_are_400(client):
    assert post(client, "Patient/$validate", patient(), mode="sideways").status_code == 400
    assert post(client, "Patient/$validate", patient(), mode="update").status_code == 400  # needs an instance
    empty = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "create"}]}
    assert post(client, "$validate", empty).status_code == 400


def test_listed_in_the_capability_statement(client):
    statement = client.get("/fhir/metadata", headers=FHIR_JSON).json()
    rest = statement["rest"][0]
    assert {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"} in \
        rest["operation"]
    patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert "validate" in {op["name"] for op in patient_entry["operation"]}
