"""read, vread, create, conditional create, update, conditional update, delete, versioning headers."""

from __future__ import annotations

import uuid

from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import assert_outcome


def _patient(family: str = "Jansen", **extra: object) -> dict:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Jan"]}],
        "birthDate": "1950-01-01",
        **extra,
    }


def test_create_assigns_id_version_and_headers(client):
    response = client.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON)
    assert response.status_code == 201
    body = response.json()
    assert body["meta"]["versionId"] == "1" and body["id"]
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert "last-modified" in response.headers
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_create_ignores_client_id(client):
    response = client.post("/fhir/Patient", json=_patient(id="client-chosen"), headers=FHIR_JSON)
    assert response.status_code == 201
    assert response.json()["id"] != "client-chosen"


def test_read_returns_what_was_stored_exactly(client):
    created = client.post(
        "/fhir/Observation",
        content=b'{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1.50}}',
        headers=FHIR_JSON,
    ).json()
    read = client.get(f"/fhir/Observation/{created['id']}")
    assert read.status_code == 200
    assert b'"value":1.50' in read.content  # decimal lexical form kept
    assert read.headers["etag"] == 'W/"1"'


def test_update_increments_version_and_vread_sees_both(client):
    pid = f"upd-{uuid.uuid4().hex[:8]}"
    first = client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers=FHIR_JSON)
    assert first.status_code == 201  # create-on-update with a client id
    second = client.put(f"/fhir/Patient/{pid}", json=_patient("Pietersen", id=pid), headers=FHIR_JSON)
    assert second.status_code == 200 and second.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{pid}/_history/1").json()["name"][0]["family"] == "Jansen"
    assert client.get(f"/fhir/Patient/{pid}/_history/2").json()["name"][0]["family"] == "Pietersen"
    assert client.get(f"/fhir/Patient/{pid}/_history/9").status_code == 404


def test_if_match_mismatch_is_412_and_match_succeeds(client):
    pid = f"ifm-{uuid.uuid4().hex[:8]}"
    client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers=FHIR_JSON)
    stale = client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers={**FHIR_JSON, "If-Match": 'W/"7"'})
    assert_outcome(stale, 412, "conflict")
    ok = client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == 'W/"2"'


def test_delete_then_read_is_410_and_history_keeps_it(client):
    pid = f"del-{uuid.uuid4().hex[:8]}"
    client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers=FHIR_JSON)
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert_outcome(client.get(f"/fhir/Patient/{pid}"), 410, "deleted")
    history = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    recreated = client.put(f"/fhir/Patient/{pid}", json=_patient(id=pid), headers=FHIR_JSON)
    assert recreated.status_code == 201 and recreated.json()["meta"]["versionId"] == "3"


def test_conditional_create(client):
    value = uuid.uuid4().hex
    body = _patient(identifier=[{"system": "urn:test", "value": value}])
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier=urn:test|{value}"}
    first = client.post("/fhir/Patient", json=body, headers=headers)
    second = client.post("/fhir/Patient", json=body, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def test_conditional_update_creates_then_updates(client):
    value = uuid.uuid4().hex
    body = _patient(identifier=[{"system": "urn:test", "value": value}])
    first = client.put(f"/fhir/Patient?identifier=urn:test|{value}", json=body, headers=FHIR_JSON)
    assert first.status_code == 201
    second = client.put(f"/fhir/Patient?identifier=urn:test|{value}", json=body, headers=FHIR_JSON)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["meta"]["versionId"] == "2"


def test_prefer_return_minimal_and_outcome(client):
    minimal = client.post("/fhir/Patient", json=_patient(), headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b"" and "location" in minimal.headers
    outcome = client.post("/fhir/Patient", json=_patient(), headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201 and outcome.json()["resourceType"] == "OperationOutcome"


def test_unknown_type_and_unknown_id_are_404(client):
    assert_outcome(client.get("/fhir/Foo/1"), 404, "not-found")
    assert_outcome(client.get("/fhir/Patient/does-not-exist"), 404, "not-found")


def test_read_summary_and_elements(client):
    created = client.post(
        "/fhir/Patient",
        json=_patient(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}),
        headers=FHIR_JSON,
    ).json()
    elements = client.get(f"/fhir/Patient/{created['id']}?_elements=birthDate").json()
    assert set(elements) == {"resourceType", "id", "meta", "birthDate"}
    assert any(tag["code"] == "SUBSETTED" for tag in elements["meta"]["tag"])
    data = client.get(f"/fhir/Patient/{created['id']}?_summary=data").json()
    assert "text" not in data and "name" in data


def test_if_none_match_gives_304(client):
    created = client.post("/fhir/Patient", json=_patient(), headers=FHIR_JSON).json()
    response = client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
