"""RAV end to end: `POST /ingest/rav` (HL7v2, MLLP-framed HL7v2, the AZ-IG FHIR message) with real tokens,
through the whole pipeline (raw kept, validated, one transaction, Provenance, idempotent, rejections kept),
and `zcc-gateway ingest --source rav`."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from conformance.packages import default_package_paths
from gateway.adapters.hl7v2.framing import frame
from gateway.cli import app as cli_app
from gateway.ingest.identity import stable_id
from tests.adapters.rav_gateway import (  # noqa: F401 - fixtures
    NL_CORE_PACKAGES,
    ROOT,
    rav_app,
    rav_client,
    rav_database_url,
    rav_service,
    rav_services,
)
from tests.reference import REFERENCE_DIR, requires_reference

MESSAGES = Path(__file__).parent / "rav_messages"
AZ_REFERRAL = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
RIDE = ("urn:oid:2.16.840.1.113883.2.4.3.32.5", "2026060800123")


def stored(services, location: str) -> dict:  # type: ignore[no-untyped-def]
    resource_type, resource_id = location.split("/")[:2]
    with services.store.read(False) as connection:
        return services.store.get(connection, resource_type, resource_id).resource()


def post(client: TestClient, raw: bytes) -> tuple[int, dict, dict]:  # noqa: F811
    response = client.post("/ingest/rav", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"})
    record = client.get(response.headers["Location"].removeprefix("http://testserver")).json()
    return response.status_code, response.json(), record


def test_adt_then_oru_write_the_ride_and_its_vital_signs(rav_client: TestClient, rav_services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    status, body, record = post(rav_client, (MESSAGES / "ADT_A04_ride_registration.hl7").read_bytes())
    assert status == 201, body
    locations = [e["response"]["location"] for e in body["entry"][1:]]
    assert sorted(x.split("/")[0] for x in locations) == ["Encounter", "Organization", "Patient", "Provenance"]
    ride = stored(rav_services, next(x for x in locations if x.startswith("Encounter/")))
    assert ride["id"] == stable_id(f"Encounter|{RIDE[0]}|{RIDE[1]}")
    assert ride["priority"]["coding"][0]["code"] == "A1"
    patient_id = stable_id("Patient|http://fhir.nl/fhir/NamingSystem/bsn|999999990")
    assert ride["subject"]["reference"] == f"Patient/{patient_id}"
    provenance = stored(rav_services, next(x for x in locations if x.startswith("Provenance/")))
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "RAVU-20260608-000123"
    assert record["interaction"] == "ADT^A04" and record["sender"] == "http://fhir.nl/fhir/NamingSystem/ura|00000001"
    assert "PV1[4]-3" in {u["xpath"] for u in record["unmapped"]}

    status, body, record = post(rav_client, frame((MESSAGES / "ORU_R01_vital_signs.hl7").read_bytes()))
    assert status == 201, body
    observations = [e["response"]["location"] for e in body["entry"][1:] if "Observation/" in e["response"]["location"]]
    assert len(observations) == 7
    bp = next(o for o in (stored(rav_services, x) for x in observations) if o["code"]["coding"][0]["code"] == "85354-9")
    assert bp["subject"]["reference"] == f"Patient/{patient_id}"

    status, body, _ = post(rav_client, (MESSAGES / "ADT_A08_ride_update.hl7").read_bytes())
    assert status == 201
    updated = stored(rav_services, f"Encounter/{ride['id']}")
    assert updated["status"] == "finished" and updated["priority"]["coding"][0]["code"] == "A2"
    assert updated["meta"]["versionId"] == "2"


def test_same_message_twice_is_a_duplicate(rav_client: TestClient) -> None:  # noqa: F811
    raw = (MESSAGES / "ORU_R01_monitor_mdc.hl7").read_bytes()
    assert post(rav_client, raw)[0] == 201
    status, body, record = post(rav_client, raw.replace(b"\r", b"\n"))  # other bytes, same message control id
    assert status == 200 and body["issue"][0]["code"] == "duplicate" and record["status"] == "duplicate"


def test_broken_hl7v2_is_kept_rejected_and_names_the_segment(rav_client: TestClient, rav_services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    raw = (MESSAGES / "ADT_A04_without_bsn.hl7").read_bytes().replace(b"PV1|1|E", b"PV 1|1|E")
    before = _resource_count(rav_services)
    status, body, record = post(rav_client, raw)
    assert status == 422 and body["issue"][0]["code"] == "structure"
    assert "segment 4" in body["issue"][0]["diagnostics"] and body["issue"][0]["expression"] == ["segment 4"]
    assert record["status"] == "rejected" and _resource_count(rav_services) == before


def test_invalid_bsn_rejects_in_strict_mode(rav_client: TestClient) -> None:  # noqa: F811
    raw = (MESSAGES / "ADT_A08_ride_update.hl7").read_bytes().replace(b"999999990", b"123456789").replace(
        b"RAVU-20260608-000124", b"RAVU-BAD-BSN")
    status, body, _ = post(rav_client, raw)
    assert status == 422 and "11-proof" in body["issue"][0]["diagnostics"]


@requires_reference
def test_az_referral_is_stored_and_routable_to_the_hap(rav_client: TestClient, rav_services) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    response = rav_client.post("/ingest/rav", content=AZ_REFERRAL.read_bytes(), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"][1:]]
    kinds = sorted(x.split("/")[0] for x in locations)
    assert kinds == ["Composition", "DocumentReference", "Organization", "Organization", "Patient", "Practitioner",
                     "PractitionerRole", "Provenance", "ServiceRequest"]
    referral = stored(rav_services, next(x for x in locations if x.startswith("ServiceRequest/")))
    hap = stable_id("Organization|http://fhir.nl/fhir/NamingSystem/ura|00000002")
    assert referral["performer"][0]["reference"] == f"Organization/{hap}"
    assert stored(rav_services, f"Organization/{hap}")["name"] == "Huisartsenpost Utrecht"
    document = stored(rav_services, next(x for x in locations if x.startswith("DocumentReference/")))
    assert document["content"][0]["attachment"]["contentType"] == "application/pdf"


def test_cli_ingest_source_rav(rav_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("ZCC_PACKAGE_PATH", ":".join(str(p) for p in [*default_package_paths(ROOT), *NL_CORE_PACKAGES]))
    message = tmp_path / "adt.hl7"
    message.write_bytes((MESSAGES / "ADT_A04_ride_registration.hl7").read_bytes().replace(
        b"RAVU-20260608-000123", b"RAVU-CLI-1"))
    broken = tmp_path / "broken.hl7"
    broken.write_bytes(b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A04|CLI-2|P|2.5\rPID|1||x\\Q\\^^^A^PI")
    result = CliRunner().invoke(cli_app, ["ingest", "--source", "rav", "--database", rav_database_url, str(message),
                                          str(broken)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output  # one rejected
    assert "accepted: 1" in result.output and "rejected: 1" in result.output
    assert "unknown escape" in result.output


def _resource_count(services) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from gateway.store.schema import resource

    with services.store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(resource)).scalar_one()


@requires_reference
def test_process_message_takes_the_az_referral(rav_client: TestClient) -> None:  # noqa: F811
    import json

    message = json.loads(AZ_REFERRAL.read_bytes())
    message["entry"][0]["resource"]["id"] = "process-message-1"  # another message id than the /ingest test
    response = rav_client.post("/fhir/$process-message", json=message, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    answer = response.json()
    header = answer["entry"][0]["resource"]
    assert answer["type"] == "message" and header["response"] == {
        "identifier": "process-message-1", "code": "ok", "details": {"reference": answer["entry"][1]["fullUrl"]}}
    record = rav_client.get(response.headers["Location"].removeprefix("http://testserver")).json()
    assert record["status"] == "accepted" and record["interaction"].endswith("#145")
    message["entry"][0]["resource"]["id"] = "process-message-2"
    message["entry"][0]["resource"]["eventCoding"]["code"] = "999"
    rejected = rav_client.post("/fhir/$process-message", json=message, headers=FHIR_JSON)
    assert rejected.status_code == 422 and rejected.json()["issue"][0]["code"] == "not-supported"
