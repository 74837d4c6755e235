"""POST /ingest/{source} and GET /ingest/{id} over HTTP, with real tokens (auth, consent and audit on)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.ingest.conftest import reference_message
from tests.ingest.messages import episode_message


def test_post_accepted_answers_a_transaction_response_and_the_record(client: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    raw = reference_message("alerts_REPC_IN990121NL_01.xml")
    response = client.post("/ingest/hap", content=raw, headers={"Content-Type": "application/xml"})
    assert response.status_code == 201, response.text
    bundle = response.json()
    assert bundle["type"] == "transaction-response"
    record_url = response.headers["Location"]
    assert bundle["entry"][0]["response"]["location"] == record_url
    locations = [e["response"]["location"] for e in bundle["entry"][1:]]
    assert sum(x.startswith("Flag/") for x in locations) == 4
    assert sum(x.startswith("Provenance/") for x in locations) == 1
    record = client.get(record_url.removeprefix("http://testserver")).json()
    assert record["status"] == "accepted" and record["interaction"] == "REPC_IN990121NL"
    assert sorted(record["resources"]) == sorted(locations)
    # reading it back over /fhir is a disclosure (consent decides, fail-closed): check the store itself
    flag_id = next(x for x in locations if x.startswith("Flag/")).split("/")[1]
    with services.store.read(False) as connection:
        flag = services.store.get(connection, "Flag", flag_id).resource()
    assert flag["meta"]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Alert"]


def test_post_rejected_answers_422_with_outcome_and_keeps_the_record(client: TestClient) -> None:
    response = client.post("/ingest/hap", content=b"<not-xml", headers={"Content-Type": "application/xml"})
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "structure"
    record = client.get(response.headers["Location"].removeprefix("http://testserver")).json()
    assert record["status"] == "rejected" and record["outcome"]["issue"][0]["code"] == "structure"


def test_duplicate_answers_200(client: TestClient) -> None:
    raw = episode_message("route-dup", episode_id="route-dup-ep")
    assert client.post("/ingest/hap", content=raw).status_code == 201
    again = client.post("/ingest/hap", content=raw)
    assert again.status_code == 200 and again.json()["issue"][0]["code"] == "duplicate"


def test_unknown_source_and_unknown_record_are_404(client: TestClient) -> None:
    assert client.post("/ingest/lab", content=b"<x/>").status_code == 404
    assert client.get("/ingest/00000000-0000-0000-0000-000000000000").status_code == 404


def test_ingest_needs_a_token(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as anonymous:
        assert anonymous.post("/ingest/hap", content=b"<x/>").status_code == 401


def test_one_ingested_message_is_one_audit_event_listing_every_resource(client: TestClient, services) -> None:  # type: ignore[no-untyped-def]
    """IHE BALP: one interaction, one AuditEvent. The message's transaction yields one event whose entities
    name every resource written (as Type/id/_history/n), plus at most the consent decision events."""
    import json

    from sqlalchemy import func, select

    from gateway.audit.log import AuditLog
    from gateway.audit.schema import audit_event

    with services.store.read() as connection:
        before = connection.execute(select(func.max(audit_event.c.seq))).scalar_one() or 0
    raw = episode_message("route-audit", episode_id="route-audit-ep")
    response = client.post("/ingest/hap", content=raw)
    assert response.status_code == 201, response.text
    written = [e["response"]["location"] for e in response.json()["entry"][1:]]
    assert len(written) >= 2
    with services.store.read() as connection:
        rows = connection.execute(select(audit_event.c.kind, audit_event.c.body)
                                  .where(audit_event.c.seq > before).order_by(audit_event.c.seq)).all()
        assert AuditLog().verify(connection).ok
    transactions = [json.loads(row.body) for row in rows if row.kind != "AuthZconsent"]
    assert len(transactions) == 1  # was one event per entry (+ one per decision) before
    [event] = transactions
    assert event["subtype"][0]["code"] == "transaction" and event["outcome"] == "0"
    what = {e["what"]["reference"] for e in event["entity"] if "what" in e}
    assert set(written) <= what
    entries = [d["valueString"] for d in event["entity"][-1]["detail"] if d["type"] == "entry"]
    assert len(entries) == len(written) and all(e.endswith(("-> 201", "-> 200")) for e in entries)
    assert len(rows) - 1 <= len({p for p in what if p.startswith("Patient/")}) * 2  # decisions grouped per patient
