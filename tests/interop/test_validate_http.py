"""`$validate` over real HTTP against a live gateway: JSON and XML, the `profile` parameter, Bundles."""

from __future__ import annotations

from lxml import etree

VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
FHIR_NS = "{http://hl7.org/fhir}"
JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
XML = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"}
HEART_RATE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "effectiveDateTime": "2024-05-01T10:00:00+02:00",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}


def error_texts(outcome: dict) -> list[tuple[str, str]]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [(i["expression"][0], i["details"]["text"]) for i in outcome["issue"] if i["severity"] == "error"]


def test_json_with_profile_parameter(live_server, http):
    plain = http.post(f"{live_server}/Observation/$validate", json=HEART_RATE, headers=JSON)
    assert plain.status_code == 200 and error_texts(plain.json()) == []
    profiled = http.post(f"{live_server}/Observation/$validate", json=HEART_RATE, headers=JSON,
                         params={"profile": VITAL_SIGNS})
    assert profiled.status_code == 200
    assert any(text.startswith("Observation.category: minimum required = 1") for _, text in
               error_texts(profiled.json()))


def test_xml_in_and_out(live_server, http):
    body = b'<Patient xmlns="http://hl7.org/fhir"><gender value="vrouw"/></Patient>'
    response = http.post(f"{live_server}/Patient/$validate", content=body, headers=XML)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+xml")
    outcome = etree.fromstring(response.content)
    assert outcome.tag == f"{FHIR_NS}OperationOutcome"
    errors = [issue for issue in outcome.iter(f"{FHIR_NS}issue")
              if issue.find(f"{FHIR_NS}severity").get("value") == "error"]
    assert [e.find(f"{FHIR_NS}expression").get("value") for e in errors] == ["Patient.gender"]


def test_bundle_entries_in_parameters(live_server, http):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:0c3a3c1e-5b7b-4c38-9a8e-1f0e3b6f2a01", "resource": HEART_RATE},
        {"fullUrl": "urn:uuid:0c3a3c1e-5b7b-4c38-9a8e-1f0e3b6f2a02",
         "resource": {**HEART_RATE, "status": "done"}},
    ]}
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bundle}]}
    response = http.post(f"{live_server}/$validate", json=parameters, headers=JSON)
    assert response.status_code == 200
    assert [where for where, _ in error_texts(response.json())] == ["Bundle.entry[1].resource.status"]
