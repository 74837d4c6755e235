"""The audit trail through the FHIR API, over HTTP with real tokens: the patient access log for authorised roles
only, AuditEvents append-only, protected writes only by administrative clients, and the fail-closed path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from gateway.audit.keys import load_checkpoint_key
from gateway.audit.log import AuditLog
from gateway.store.schema import resource
from tests.consent.http_gateway import ADMIN, PRIVACY, TRIAGE, Gateway, build_gateway, observation

JSON = {"Content-Type": "application/fhir+json"}
SECURITY_R = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as patch:
        yield from build_gateway(tmp_path_factory, patch)


def foreign_event(patient: str = "pb", recorded: str = "2025-01-01T10:00:00+01:00") -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": recorded,
        "agent": [{"requestor": True, "who": {"display": "EHR user"}}],
        "source": {"observer": {"display": "hap-ehr"}},
        "entity": [{"what": {"reference": f"Patient/{patient}"}}],
    }


def test_patient_access_log_lists_who_looked(gateway: Gateway) -> None:
    looked = gateway.get("Observation/ob2")
    refused = gateway.get("Observation/ob2", **{"X-Zcc-Contact": "Encounter/ea"})
    log = gateway.get("AuditEvent?patient=Patient/pb2&_count=1000", caller=PRIVACY)
    assert log.status_code == 200
    events = [entry["resource"] for entry in log.json()["entry"]]
    decision_ids = {looked.headers["x-zcc-decision-id"], refused.headers["x-zcc-decision-id"]}
    mine = [e for e in events if any(d in str(e) for d in decision_ids)]
    assert {e["outcome"] for e in mine} == {"0", "4"}
    ura = {a["who"]["identifier"]["value"] for e in mine for a in e["agent"] if "identifier" in a.get("who", {})}
    assert "00001111" in ura  # the triagist's organisation
    assert log.json()["total"] == len(events)


def test_access_log_is_for_authorised_roles_only(gateway: Gateway) -> None:
    for caller in (TRIAGE,):
        response = gateway.get("AuditEvent?patient=pb", caller=caller)
        assert response.status_code == 403 and "privacy-officer" in response.text
    assert gateway.get("AuditEvent?patient=pb", caller=ADMIN).status_code == 200


def test_reading_the_log_is_itself_logged(gateway: Gateway) -> None:
    gateway.get("AuditEvent?patient=pc", caller=PRIVACY)
    log = gateway.get("AuditEvent?patient=pc&_count=1000", caller=PRIVACY).json()
    queries = [e["resource"] for e in log["entry"] if e["resource"]["subtype"][0]["code"] == "search-type"
               and any(a.get("who", {}).get("identifier", {}).get("value") == "privacy-office"
                       for a in e["resource"]["agent"])]
    assert queries, "the privacy officer's read of pc's log is in pc's log"


def test_access_log_paging_and_date_bounds(gateway: Gateway) -> None:
    posted = gateway.client.post("/fhir/AuditEvent", json=foreign_event("pd"), headers={**gateway.headers(ADMIN),
                                                                                          **JSON})
    assert posted.status_code == 201
    january = gateway.get("AuditEvent?patient=pd&date=ge2025-01-01&date=lt2025-02-01", caller=PRIVACY).json()
    assert [e["resource"]["id"] for e in january["entry"]] == [posted.json()["id"]]
    assert gateway.get("AuditEvent?patient=pd&date=lt2025-01-01T09:00:00Z", caller=PRIVACY).json()["total"] == 0
    first = gateway.get("AuditEvent?patient=pd&_count=1", caller=PRIVACY).json()
    assert len(first["entry"]) == 1 and any(link["relation"] == "next" for link in first["link"])
    assert gateway.get(f"AuditEvent/{posted.json()['id']}", caller=PRIVACY).json()["recorded"] == (
        "2025-01-01T10:00:00+01:00")


def test_bad_audit_searches_are_clear_errors(gateway: Gateway) -> None:
    for query, code in [("AuditEvent", "required"), ("AuditEvent?patient=pb&agent=x", "not-supported"),
                        ("AuditEvent?patient=pb&date=yesterday", "invalid"), ("AuditEvent?patient=pb&_count=-1",
                                                                              "invalid")]:
        response = gateway.get(query, caller=PRIVACY)
        assert response.status_code == 400 and response.json()["issue"][0]["code"] == code, query


def test_audit_events_cannot_be_changed_or_deleted_even_by_admins(gateway: Gateway) -> None:
    assert gateway.get("Observation/ob1").status_code == 404  # leaves events about pb
    with gateway.services.store.read() as connection:
        some = AuditLog().search(connection, ["pb"], count=1).events[0]
    admin = {**gateway.headers(ADMIN), **JSON}
    changed = {**some, "outcome": "0"}
    assert gateway.client.put(f"/fhir/AuditEvent/{some['id']}", json=changed, headers=admin).status_code == 403
    assert gateway.client.delete(f"/fhir/AuditEvent/{some['id']}", headers=admin).status_code == 403
    assert gateway.get(f"AuditEvent/{some['id']}/_history", caller=ADMIN).status_code == 400
    assert gateway.get(f"AuditEvent/{some['id']}", caller=PRIVACY).json() == some


def test_protected_writes_only_by_administrative_clients(gateway: Gateway) -> None:
    triage = {**gateway.headers(TRIAGE), **JSON}
    admin = {**gateway.headers(ADMIN), **JSON}
    consent = {"resourceType": "Consent", "status": "active", "scope": {"coding": [{"code": "patient-privacy"}]},
               "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
               "patient": {"reference": "Patient/pa"}, "provision": {"type": "deny"},
               "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                          "code": "OPTOUT"}]}}
    provenance = {"resourceType": "Provenance", "target": [{"reference": "Patient/pa"}],
                  "recorded": "2025-01-01T00:00:00Z", "agent": [{"who": {"display": "x"}}]}
    labelled = {**observation("lab1", "pa", "labelled"), "meta": SECURITY_R}
    del labelled["id"]
    with gateway.services.store.read() as connection:
        before = connection.execute(select(func.count()).select_from(resource)).scalar_one()
    for path, body in [("Consent", consent), ("Provenance", provenance), ("Observation", labelled),
                       ("AuditEvent", foreign_event())]:
        response = gateway.client.post(f"/fhir/{path}", json=body, headers=triage)
        assert response.status_code == 403, path
    relabel = gateway.client.put("/fhir/Observation/oa1", json={**observation("oa1", "pa", "x"), "meta": SECURITY_R},
                                 headers=triage)
    assert relabel.status_code == 403
    with gateway.services.store.read() as connection:
        assert connection.execute(select(func.count()).select_from(resource)).scalar_one() == before
    for path, body in [("Consent", consent), ("Provenance", provenance), ("AuditEvent", foreign_event())]:
        assert gateway.client.post(f"/fhir/{path}", json=body, headers=admin).status_code == 201, path


def test_unlabelling_in_a_transaction_is_a_protected_write(gateway: Gateway,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction replacing labelled data by unlabelled data is refused for a non-administrative client, as a
    single update is; the labels of its updates' current versions are read in one statement, not per entry."""
    triage = {**gateway.headers(TRIAGE), **JSON}
    admin = {**gateway.headers(ADMIN), **JSON}
    labelled = {**observation("lab-tx", "pa", "labelled"), "meta": SECURITY_R}
    assert gateway.client.put("/fhir/Observation/lab-tx", json=labelled, headers=admin).status_code in (200, 201)
    store = gateway.services.store
    point_reads: list[tuple[str, str]] = []
    real_get = type(store).get
    monkeypatch.setattr(type(store), "get", lambda self, connection, rtype, rid: (
        point_reads.append((rtype, rid)), real_get(self, connection, rtype, rid))[1])

    def transaction(*observations: dict[str, Any]) -> Any:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": o, "request": {"method": "PUT", "url": f"Observation/{o['id']}"}} for o in observations]}
        return gateway.client.post("/fhir", json=bundle, headers=triage)

    refused = transaction(observation("tx-free", "pa", "free"), observation("lab-tx", "pa", "unlabelled"))
    assert refused.status_code == 403
    assert ("Observation", "lab-tx") not in point_reads and ("Observation", "tx-free") not in point_reads
    with store.read() as connection:
        assert store.get(connection, "Observation", "lab-tx").resource()["meta"]["security"]  # type: ignore[union-attr]
        assert store.get(connection, "Observation", "tx-free") is None  # nothing of the transaction written
    assert transaction(observation("tx-free", "pa", "free")).status_code == 200


def test_chain_verifies_after_all_of_the_above(gateway: Gateway) -> None:
    key = load_checkpoint_key()
    with gateway.services.store.read() as connection:
        result = AuditLog().verify(connection, key.check)
    assert result.ok and result.count > 20


# -- fail closed --------------------------------------------------------------------------------------------------


@pytest.fixture
def broken_audit_store(gateway: Gateway) -> Iterator[None]:
    """The database refuses audit inserts (as with a full disk or a revoked grant) while data still works. (Any
    trigger left from an earlier test goes first: one fresh-clone CI run found it still there at set-up.)"""
    with gateway.services.store.write() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS refuse_audit"))
        connection.execute(text("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                                "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"))
    yield
    with gateway.services.store.write() as connection:
        connection.execute(text("DROP TRIGGER refuse_audit"))


def test_audit_write_failure_on_a_read_returns_no_data(gateway: Gateway, broken_audit_store: None) -> None:
    response = gateway.get("Observation/oa1")
    assert response.status_code == 500
    assert "pulse-of-a" not in response.text and response.json()["resourceType"] == "OperationOutcome"
    assert "could not be audited" in response.text


def test_audit_write_failure_on_a_write_stores_nothing(gateway: Gateway, broken_audit_store: None) -> None:
    with gateway.services.store.read() as connection:
        before = connection.execute(select(func.count()).select_from(resource)).scalar_one()
    created = observation("x", "pa", "unaudited")
    del created["id"]
    response = gateway.client.post("/fhir/Observation", json=created, headers={**gateway.headers(TRIAGE), **JSON})
    assert response.status_code == 500 and "unaudited" not in response.text
    with gateway.services.store.read() as connection:
        assert connection.execute(select(func.count()).select_from(resource)).scalar_one() == before


def test_audit_write_failure_on_a_search_returns_no_data(gateway: Gateway, broken_audit_store: None) -> None:
    response = gateway.get("Observation?subject=Patient/pa")
    assert response.status_code == 500 and "pulse-of-a" not in response.text
