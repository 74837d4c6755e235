"""Drive a live gateway with a real FHIR client library (fhirpy) and raw httpx (headers, ETags, XML)."""

from __future__ import annotations

import uuid

from fhirpy import SyncFHIRClient


def _client(base: str, headers: dict[str, str]) -> SyncFHIRClient:
    return SyncFHIRClient(
        base, authorization=headers["Authorization"], extra_headers={"Accept": "application/fhir+json"}
    )


def test_crud_with_fhirpy(live_server, http):
    client = _client(live_server, http.headers)
    patient = client.resource("Patient", name=[{"family": "Interop", "given": ["Ilse"]}], gender="female")
    patient.save()
    assert patient.id and patient["meta"]["versionId"] == "1"
    patient["birthDate"] = "1970-01-01"
    patient.save()
    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["birthDate"] == "1970-01-01" and fetched["meta"]["versionId"] == "2"
    fetched.delete()
    assert http.get(f"{live_server}/Patient/{patient.id}").status_code == 410


def test_search_paging_and_include_with_fhirpy(live_server, http):
    client = _client(live_server, http.headers)
    family = f"Page{uuid.uuid4().hex[:6]}"
    org = client.resource("Organization", name=f"Org {family}")
    org.save()
    for index in range(7):
        client.resource(
            "Patient",
            name=[{"family": family, "given": [str(index)]}],
            managingOrganization={"reference": f"Organization/{org.id}"},
        ).save()
    found = client.resources("Patient").search(family=family).limit(3).fetch_all()
    assert len(found) == 7
    bundle = http.get(
        f"{live_server}/Patient", params={"family": family, "_include": "Patient:organization", "_count": "3"}
    ).json()
    modes = [entry["search"]["mode"] for entry in bundle["entry"]]
    assert modes.count("match") == 3 and modes.count("include") == 1
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_history_with_fhirpy(live_server, http):
    client = _client(live_server, http.headers)
    practitioner = client.resource("Practitioner", name=[{"family": "Hist"}])
    practitioner.save()
    practitioner["active"] = True
    practitioner.save()
    history = http.get(f"{live_server}/Practitioner/{practitioner.id}/_history").json()
    assert [entry["resource"]["meta"]["versionId"] for entry in history["entry"]] == ["2", "1"]


def test_transaction_with_urn_uuid_via_client(live_server, http):
    client = _client(live_server, http.headers)
    patient_ref = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_ref,
                "resource": {"resourceType": "Patient", "name": [{"family": "Tx"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "pols"},
                    "subject": {"reference": patient_ref},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = client.execute("", method="post", data=bundle)
    locations = [entry["response"]["location"] for entry in response["entry"]]
    observation = http.get(f"{live_server}/{locations[1].split('/_history')[0]}").json()
    assert observation["subject"]["reference"] == locations[0].split("/_history")[0]


def test_headers_etag_and_xml_in_and_out(live_server, http):
    xml = (
        b'<Patient xmlns="http://hl7.org/fhir"><name><family value="Xml"/><given value="Xander"/></name>'
        b'<birthDate value="1980-02-29"/></Patient>'
    )
    created = http.post(
        f"{live_server}/Patient",
        content=xml,
        headers={"Content-Type": "application/fhir+xml", "Accept": "application/fhir+xml"},
    )
    assert created.status_code == 201 and created.headers["etag"] == 'W/"1"'
    assert created.headers["content-type"].startswith("application/fhir+xml")
    assert b'<family value="Xml"/>' in created.content
    location = created.headers["location"]
    as_json = http.get(location.split("/_history")[0], params={"_format": "json"}).json()
    assert as_json["name"][0]["given"] == ["Xander"] and as_json["birthDate"] == "1980-02-29"
    stale = http.put(
        location.split("/_history")[0],
        json={**as_json},
        headers={"If-Match": 'W/"5"', "Content-Type": "application/fhir+json"},
    )
    assert stale.status_code == 412


def test_capability_statement(live_server, http):
    statement = http.get(f"{live_server}/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {"read", "vread", "create", "update", "delete", "search-type"} <= {i["code"] for i in patient["interaction"]}
    assert any(param["name"] == "birthdate" for param in patient["searchParam"])


def test_requests_without_a_token_are_refused_but_metadata_is_public(live_server):
    import httpx

    refused = httpx.get(f"{live_server}/Patient")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.json()["resourceType"] == "OperationOutcome"
    statement = httpx.get(f"{live_server}/metadata").json()
    assert statement["rest"][0]["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"


def test_a_token_without_the_scope_gets_403(live_server, token_for):
    import httpx

    narrow = token_for("system/Patient.rs")
    assert httpx.get(f"{live_server}/Patient?_count=1", headers=narrow).status_code == 200
    forbidden = httpx.get(f"{live_server}/Observation?_count=1", headers=narrow)
    assert forbidden.status_code == 403 and forbidden.json()["issue"][0]["code"] == "forbidden"
