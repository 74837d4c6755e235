"""End to end: `POST /ingest/vvt` with the eOverdracht Task + Composition set of one qualification scenario,
a single resource, bad input, and `zcc-gateway ingest --source vvt`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from gateway.app import build_services
from gateway.cli import app as cli_app
from gateway.settings import Settings
from tests.adapters.stu3_fixtures import VVT, instantiate, nl_core_package_paths, stu3_bundle, vvt_fixtures
from tests.ingest.conftest import app, client, database_url, service  # noqa: F401 - fixtures
from tests.reference import requires_reference

pytestmark = requires_reference


@pytest.fixture(scope="module")
def services(database_url: str):  # noqa: F811  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, base_url="http://testserver/fhir",
                        package_paths=nl_core_package_paths())
    return build_services(settings)
SCENARIO = "eov-val-1_2b"
JSON = {"Content-Type": "application/fhir+json"}


def _scenario() -> list[Path]:
    """The scenario as sent at the handoff: the Task in progress (its COMPLETED twin is a later state)."""
    return [p for p in vvt_fixtures() if SCENARIO in p.name and "COMPLETED" not in p.name]


def test_task_and_composition_set_is_stored_with_provenance(client: TestClient, services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    bundle = stu3_bundle([instantiate(p.read_bytes()) for p in _scenario()], "transaction")
    response = client.post("/ingest/vvt?mode=lenient", content=json.dumps(bundle).encode(), headers=JSON)
    assert response.status_code == 201, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"][1:]]
    written = Counter(location.split("/")[0] for location in locations)
    sent = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    assert written == sent + Counter({"Provenance": 1})  # resources per type in == out
    record = client.get(response.headers["Location"].removeprefix("http://testserver")).json()
    assert record["status"] == "accepted" and record["interaction"] == "Bundle.transaction"
    assert any(u["path"].endswith(".meta.profile") and "eOverdracht-Task" in u["value"] for u in record["unmapped"])
    with services.store.read(False) as connection:
        def stored(kind: str) -> dict:  # type: ignore[type-arg]
            location = next(x for x in locations if x.startswith(kind + "/"))
            return services.store.get(connection, kind, location.split("/")[1]).resource()
        task, composition, patient = stored("Task"), stored("Composition"), stored("Patient")
        provenance = stored("Provenance")
    assert task["for"]["reference"] == f"Patient/{patient['id']}"  # references resolved inside the set
    assert task["input"][0]["valueReference"]["reference"] == f"Composition/{composition['id']}"
    assert task["requester"]["reference"].startswith("PractitionerRole/")  # zib2017 practitionerrole-reference
    assert patient["meta"]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"]
    assert {t["reference"] for t in provenance["target"]} >= {f"Task/{task['id']}", f"Patient/{patient['id']}"}
    who = provenance["agent"][0]["who"]  # the requester's organisation (by reference, or its URA/AGB)
    assert who.get("reference", "").startswith("Organization/") or who["identifier"]["value"]


def test_dangling_reference_in_a_bundle_is_rejected_and_kept(client: TestClient) -> None:  # noqa: F811
    task = next(p for p in _scenario() if "Task" in p.name)
    bundle = stu3_bundle([instantiate(task.read_bytes())], "collection")  # the Task without its Patient etc.
    response = client.post("/ingest/vvt", content=json.dumps(bundle).encode(), headers=JSON)
    assert response.status_code == 422
    issues = response.json()["issue"]
    assert any(i["code"] == "not-found" and "Patient/nl-core-patient-eov-val-1-2b-01" in i["diagnostics"]
               for i in issues)
    record = client.get(response.headers["Location"].removeprefix("http://testserver")).json()
    assert record["status"] == "rejected" and record["resources"] == []


def test_unresolved_test_script_placeholder_is_rejected_with_its_place(client: TestClient) -> None:  # noqa: F811
    raw = (VVT / "resources-generic" / "zib-BodyWeight-eov-val-1_1b-01.xml").read_bytes()  # still a template
    response = client.post("/ingest/vvt", content=raw, headers={"Content-Type": "application/fhir+xml"})
    assert response.status_code == 422
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "Observation.effectiveDateTime" in diagnostics and "${DATE, T, d, -5}" in diagnostics


def test_wrong_fhir_version_and_unknown_type_are_rejected(client: TestClient) -> None:  # noqa: F811
    r4 = {"resourceType": "Patient", "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"]}}
    response = client.post("/ingest/vvt", content=json.dumps(r4).encode(), headers=JSON)
    assert response.status_code == 422 and "R4" in response.json()["issue"][0]["diagnostics"]
    unknown = client.post("/ingest/vvt", content=b'{"resourceType": "Spaceship"}', headers=JSON)
    assert unknown.status_code == 422 and unknown.json()["issue"][0]["code"] == "not-supported"
    r4_only = client.post("/ingest/vvt", content=b'{"resourceType": "ServiceRequest"}', headers=JSON)
    assert r4_only.status_code == 422 and "R4 resource type" in r4_only.json()["issue"][0]["diagnostics"]


def test_cli_ingests_vvt_files(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("ZCC_PACKAGE_PATH", ":".join(str(p) for p in nl_core_package_paths()))
    for path in _scenario():
        if path.name.startswith(("nl-core-patient", "zib-BodyWeight")):
            (tmp_path / path.name).write_bytes(instantiate(path.read_bytes()))
    result = CliRunner().invoke(cli_app, ["ingest", "--source", "vvt", "--database", database_url, str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"accepted: {len(list(tmp_path.iterdir()))}" in result.output


def test_the_same_logical_id_from_two_organisations_is_two_resources(service, services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    """A STU3 logical id is only unique at its sender: `Patient/1` from two nursing homes must not land on
    one stored resource (one home's data would be shown as the other's patient)."""
    import dataclasses

    from gateway.ingest.actor import cli_identity

    patient = {"resourceType": "Patient", "id": "1", "identifier": [
        {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}], "name": [{"family": "A"}]}
    observation = {"resourceType": "Observation", "id": "1", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                   "subject": {"reference": "Patient/1"},
                   "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}
    written = []
    for ura, value in (("90000401", 70), ("90000402", 90)):
        identity = dataclasses.replace(cli_identity(), ura=ura)
        sent = json.loads(json.dumps(observation))
        sent["valueQuantity"]["value"] = value
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": f"http://vendor.example/fhir/{r['resourceType']}/1", "resource": r} for r in (patient, sent)]}
        result = service.ingest("vvt", json.dumps(bundle).encode(), identity, lenient=True)
        assert result.record.status == "accepted", result.record.outcome
        written.append(next(e["response"]["location"] for e in result.response["entry"]
                            if e["response"]["location"].startswith("Observation/")))
    assert written[0].split("/_history")[0] != written[1].split("/_history")[0]
    with services.store.read(False) as connection:
        values = [services.store.get(connection, "Observation", w.split("/")[1]).resource()["valueQuantity"]["value"]
                  for w in written]
    assert values == [70, 90]  # neither overwrote the other
