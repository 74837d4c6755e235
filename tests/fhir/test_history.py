"""Instance, type and system history with paging."""

from __future__ import annotations

import uuid

from tests.fhir.conftest import FHIR_JSON


def test_instance_history_newest_first_with_paging(client):
    pid = f"h-{uuid.uuid4().hex[:8]}"
    for family in ["A", "B", "C"]:
        client.put(
            f"/fhir/Patient/{pid}",
            json={"resourceType": "Patient", "id": pid, "name": [{"family": family}]},
            headers=FHIR_JSON,
        )
    page = client.get(f"/fhir/Patient/{pid}/_history?_count=2").json()
    assert page["type"] == "history" and page["total"] == 3
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"]] == ["3", "2"]
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    client.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid}, headers=FHIR_JSON)
    second = client.get(next_url.replace("http://testserver", "")).json()
    assert [e["resource"]["meta"]["versionId"] for e in second["entry"]] == ["1"]  # stable despite the new write


def test_type_and_system_history(client):
    client.post("/fhir/Practitioner", json={"resourceType": "Practitioner"}, headers=FHIR_JSON)
    assert client.get("/fhir/Practitioner/_history").json()["total"] >= 1
    system = client.get("/fhir/_history?_count=1").json()
    assert system["total"] >= 1 and len(system["entry"]) == 1


def test_history_of_unknown_resource_is_404(client):
    assert client.get("/fhir/Patient/never-there/_history").status_code == 404
