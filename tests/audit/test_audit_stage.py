"""Audit + consent stages wired into a real pipeline on SQLite: every interaction leaves AuditEvents in the
chain, denials included; the audit write failure path denies; data and audit share the transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.app import build_services
from gateway.audit.log import AuditLog, AuditWriteError
from gateway.audit.schema import audit_event, audit_metadata, audit_review
from gateway.audit.stage import AuditStage
from gateway.consent.engine import ConsentEngine
from gateway.consent.explain_operation import explain_access_operation
from gateway.consent.stage import ConsentStage
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction
from gateway.settings import Settings

BASE = "http://testserver/fhir"


def _instant(delta_hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=delta_hours)).isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    database = tmp_path_factory.mktemp("db") / "gateway.db"
    built = build_services(Settings(database_url=f"sqlite:///{database}", base_url=BASE), stages=False)
    audit_metadata.create_all(built.store.engine)
    engine = ConsentEngine.build(built.packages, BASE)
    built.pipeline.add_stage(AuditStage(AuditLog(), BASE, lambda: datetime.now(UTC)))
    built.pipeline.add_stage(ConsentStage(engine))
    built.pipeline.add_operation(explain_access_operation(engine))
    with built.store.write() as connection:
        for body in [
            {"resourceType": "Patient", "id": "p1"},
            {"resourceType": "Patient", "id": "p2"},
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "in-progress",
                "class": {"code": "EMER"},
                "subject": {"reference": "Patient/p1"},
                "period": {"start": _instant(-1)},
            },
            {
                "resourceType": "Encounter",
                "id": "e2",
                "status": "in-progress",
                "class": {"code": "EMER"},
                "subject": {"reference": "Patient/p2"},
                "period": {"start": _instant(-30)},
            },
            {
                "resourceType": "Observation",
                "id": "o1",
                "status": "final",
                "code": {"text": "bp"},
                "subject": {"reference": "Patient/p1"},
            },
            {
                "resourceType": "Observation",
                "id": "o2",
                "status": "final",
                "code": {"text": "bp"},
                "subject": {"reference": "Patient/p2"},
            },
            {
                "resourceType": "Condition",
                "id": "c1",
                "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "active"}]},
            },
        ]:
            built.store.save(connection, body, body["id"])
    return built


def identity(**changes: Any) -> SimpleNamespace:
    values = {
        "client_id": "zcc-app",
        "ura": "00001111",
        "organization_type": "N6",
        "role": "triagist",
        "purpose_of_use": "TREAT",
        "scopes": (),
        "token_id": "jti-123",
    }
    values.update(changes)
    return SimpleNamespace(**values)


def dispatch(services: Any, it: Interaction, who: Any = None) -> Any:
    return services.pipeline.dispatch(RequestScope(services, identity=who or identity()), it)


def events(services: Any) -> list[dict[str, Any]]:
    import json

    with services.store.read() as connection:
        return [json.loads(row.body) for row in connection.execute(select(audit_event).order_by(audit_event.c.seq))]


def count(services: Any) -> int:
    with services.store.read() as connection:
        return connection.execute(select(func.count()).select_from(audit_event)).scalar_one()


def test_permitted_read_is_audited_as_patient_read(services: Any) -> None:
    before = count(services)
    result = dispatch(services, Interaction("read", "GET", "Observation", "o1"))
    assert result.status == 200
    new = events(services)[before:]
    read, consent = new
    assert read["meta"]["profile"][0].endswith("IHE.BasicAudit.PatientRead")
    assert {"reference": "Patient/p1"} in [e.get("what") for e in read["entity"]]
    assert read["agent"][0]["policy"] == ["jti-123"] and "token" not in str(read).lower().replace("token_id", "")
    assert consent["meta"]["profile"][0].endswith("AuthZconsent") and consent["subtype"][0]["code"] == "permit"
    details = {d["type"]: d["valueString"] for d in consent["entity"][-1]["detail"]}
    assert details["rule"] == "zcc-treatment" and details["decision-id"] == result.headers["X-Zcc-Decision-Id"]


def test_denied_read_is_404_and_audited(services: Any) -> None:
    before = count(services)
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("read", "GET", "Observation", "o2"))  # p2's contact is 30 h old
    assert caught.value.status == 404
    read, consent = events(services)[before:]
    assert read["outcome"] == "4" and consent["subtype"][0]["code"] == "deny"
    assert {d["type"]: d["valueString"] for d in consent["entity"][-1]["detail"]}["rule"] == "zcc-no-contact"


def test_idor_named_contact_of_another_patient(services: Any) -> None:
    it = Interaction("read", "GET", "Observation", "o1", headers={"x-zcc-contact": "Encounter/e2"})
    with pytest.raises(FhirError) as caught:
        dispatch(services, it)
    assert caught.value.status == 404
    ok = Interaction("read", "GET", "Observation", "o1", headers={"x-zcc-contact": "Encounter/e1"})
    assert dispatch(services, ok).status == 200


def test_include_and_search_leaks_are_closed(services: Any) -> None:
    it = Interaction("search-type", "GET", "Observation", params=[("_include", "Observation:subject")])
    result = dispatch(services, it)
    ids = sorted(e["resource"]["id"] for e in result.resource.get("entry", []))
    assert ids == ["o1", "p1"]
    read = [e for e in events(services) if e.get("meta", {}).get("profile", [""])[0].endswith("PatientQuery")][-1]
    assert {"reference": "Patient/p1"} in [e.get("what") for e in read["entity"]]
    query = [e for e in read["entity"] if e.get("role", {}).get("code") == "24"][0]
    import base64

    assert base64.b64decode(query["query"]).decode() == "Observation?_include=Observation:subject"
    # every disclosed resource (the include too) is listed, by reference alone; a withheld one (o2) is not
    results = [e for e in read["entity"] if set(e) == {"what"}]
    assert sorted(e["what"]["reference"] for e in results) == ["Observation/o1", "Patient/p1"]


def test_a_read_names_its_resource_as_balp_data_entity(services: Any) -> None:
    dispatch(services, Interaction("read", "GET", "Observation", "o1"))
    read = [e for e in events(services) if e.get("meta", {}).get("profile", [""])[0].endswith("PatientRead")][-1]
    data = [e for e in read["entity"] if e.get("what") == {"reference": "Observation/o1"}]
    assert [(e["type"]["code"], e["role"]["code"]) for e in data] == [("2", "4")]  # System Object, Domain Resource


def test_history_does_not_leak(services: Any) -> None:
    result = dispatch(services, Interaction("history-type", "GET", "Observation"))
    assert [e["resource"]["id"] for e in result.resource["entry"]] == ["o1"]


def test_transaction_reads_are_filtered_and_audited_in_the_transaction(services: Any) -> None:
    before = count(services)
    body = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": "Observation/o1"}},
            {
                "request": {"method": "POST", "url": "Observation"},
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": "Patient/p2"},
                },
            },
        ],
    }
    result = dispatch(services, Interaction("transaction", "POST", body=body))
    entries = result.resource["entry"]
    assert entries[0]["resource"]["id"] == "o1"
    assert "resource" not in entries[1] and entries[1]["response"]["status"].startswith("201")
    # one interaction, one AuditEvent (IHE BALP): it lists both entries' patients and resources
    new = events(services)[before:]
    interactions = [e for e in new if "AuthZconsent" not in str(e.get("meta"))]
    assert len(interactions) == 1
    [event] = interactions
    assert [s["code"] for s in event["subtype"]] == ["transaction", "create", "read"]
    what = [e["what"]["reference"] for e in event["entity"] if "what" in e]
    created = entries[1]["response"]["location"]  # Observation/<id>/_history/1
    assert {"Patient/p1", "Patient/p2", "Observation/o1", created} <= set(what)
    details = [d["valueString"] for d in event["entity"][-1]["detail"] if d["type"] == "entry"]
    created_id = created.split("/")[1]
    assert details == [f"POST Observation/{created_id} -> 201", "GET Observation/o1 -> 200"]
    decisions = [e for e in new if "AuthZconsent" in str(e.get("meta"))]
    assert {e["entity"][0]["what"]["reference"] for e in decisions} >= {"Patient/p1"}


def test_a_failed_transaction_is_one_event_with_the_failure(services: Any) -> None:
    before = count(services)
    body = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "z"},
                          "subject": {"reference": "Patient/p1"}}},
            {"request": {"method": "GET", "url": "Observation/o2"}},  # p2: no contact, 404: all rolled back
        ],
    }
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("transaction", "POST", body=body))
    assert caught.value.status == 404
    new = events(services)[before:]
    [event] = [e for e in new if "AuthZconsent" not in str(e.get("meta"))]
    assert event["outcome"] == "4" and [s["code"] for s in event["subtype"]] == ["transaction", "create", "read"]
    details = [d["valueString"] for d in event["entity"][-1]["detail"] if d["type"] == "entry"]
    assert details[1].startswith("GET Observation/o2 -> 404")
    # the denial inside the rolled-back transaction is still on record
    decided = {(d["entity"][0]["what"]["reference"], d["subtype"][0]["code"]) for d in new if d is not event}
    assert ("Patient/p2", "deny") in decided


def test_transaction_audit_failure_denies_and_rolls_back(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = next(s for s in services.pipeline.stages if isinstance(s, AuditStage))
    with services.store.read() as connection:
        observations = services.store.count(connection, "Observation")

    def broken(*_: Any, **__: Any) -> Any:
        raise AuditWriteError("disk full")

    monkeypatch.setattr(stage.log, "append_all", broken)
    body = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "POST", "url": "Observation"},
                   "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                                "subject": {"reference": "Patient/p1"}}}],
    }
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("transaction", "POST", body=body))
    assert caught.value.status == 500
    with services.store.read() as connection:
        assert services.store.count(connection, "Observation") == observations  # no data without its audit


def test_batch_reads_are_one_event_and_batch_writes_keep_their_own(services: Any) -> None:
    before = count(services)
    body = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation/o1"}},
            {"request": {"method": "GET", "url": "Condition/c1"}},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "b"},
                          "subject": {"reference": "Patient/p1"}}},
        ],
    }
    result = dispatch(services, Interaction("batch", "POST", body=body))
    assert [e["response"]["status"][:3] for e in result.resource["entry"]] == ["200", "200", "201"]
    new = [e for e in events(services)[before:] if "AuthZconsent" not in str(e.get("meta"))]
    assert sorted(e["subtype"][0]["code"] for e in new) == ["batch", "create"]  # the write committed alone
    [batch] = [e for e in new if e["subtype"][0]["code"] == "batch"]
    assert [s["code"] for s in batch["subtype"]] == ["batch", "read"]
    what = {e["what"]["reference"] for e in batch["entity"] if "what" in e}
    assert {"Patient/p1", "Observation/o1", "Condition/c1"} <= what


def test_write_and_audit_share_the_transaction(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = next(s for s in services.pipeline.stages if isinstance(s, AuditStage))
    with services.store.read() as connection:
        observations = services.store.count(connection, "Observation")

    def broken(*_: Any, **__: Any) -> Any:
        raise AuditWriteError("disk full")

    monkeypatch.setattr(stage.log, "append_all", broken)
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "y"},
        "subject": {"reference": "Patient/p1"},
    }
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("create", "POST", "Observation", body=body))
    assert caught.value.status == 500
    with services.store.read() as connection:
        assert services.store.count(connection, "Observation") == observations  # rolled back with the audit
    with pytest.raises(FhirError) as read_failure:
        dispatch(services, Interaction("read", "GET", "Observation", "o1"))
    assert read_failure.value.status == 500  # no data without an audit record


def test_audit_on_an_unavailable_database_is_a_retryable_503(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    stage = next(s for s in services.pipeline.stages if isinstance(s, AuditStage))

    def locked(*_: Any, **__: Any) -> Any:
        raise AuditWriteError("audit event could not be written") from OperationalError(
            "INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(stage.log, "append_all", locked)
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("read", "GET", "Observation", "o1"))
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]
    assert caught.value.issues[0].code == "transient"


def test_btg_opens_a_review_item(services: Any) -> None:
    headers = {
        "x-zcc-emergency": "true",
        "x-zcc-emergency-reason": "unconscious",
        "x-zcc-patient-unable-to-consent": "true",
    }
    result = dispatch(
        services, Interaction("read", "GET", "Condition", "c1", headers=headers), identity(purpose_of_use="BTG")
    )
    assert result.status == 200 and "X-Zcc-Btg-Expires" in result.headers
    with pytest.raises(FhirError):
        dispatch(
            services, Interaction("read", "GET", "Observation", "o1", headers=headers), identity(purpose_of_use="BTG")
        )  # outside the emergency dataset
    with services.store.read() as connection:
        reviews = connection.execute(select(audit_review)).all()
    assert [(r.patient, r.reason) for r in reviews] == [("p1", "unconscious")]


def test_explain_access(services: Any) -> None:
    result = dispatch(services, Interaction("operation", "GET", "Patient", "p2", operation="explain-access"))
    values = {p["name"]: p for p in result.resource["parameter"]}
    assert values["rule"]["valueString"] == "zcc-no-contact"
    unknown = dispatch(services, Interaction("operation", "GET", "Patient", "nobody", operation="explain-access"))
    assert unknown.resource["parameter"][:2] == result.resource["parameter"][:2]  # existence is not revealed


def test_audit_events_cannot_be_changed(services: Any) -> None:
    body = {"resourceType": "AuditEvent", "id": "x"}
    with pytest.raises(FhirError) as caught:
        dispatch(services, Interaction("update", "PUT", "AuditEvent", "x", body=body), identity(role="admin"))
    assert caught.value.status == 403


def test_the_chain_verifies_after_all_of_it(services: Any) -> None:
    with services.store.read() as connection:
        result = AuditLog().verify(connection)
    assert result.ok and result.count == count(services)


def test_grouped_decisions_count_resources_per_patient_rule_and_effect() -> None:
    """A page shares decision objects per resource shape; equal decisions in distinct objects group alike."""
    from types import SimpleNamespace

    from gateway.audit.stage import _grouped_decisions
    from gateway.consent.model import Decision, Effect

    permit = Decision(Effect.PERMIT, "zcc-contact", "nl", "en", patient="p1")
    again = Decision(Effect.PERMIT, "zcc-contact", "nl", "en", patient="p1")
    other = Decision(Effect.DENY, "default", "nl", "en", patient="p2")
    nobody = Decision(Effect.PERMIT, "no-patient", "nl", "en")
    record = SimpleNamespace(
        decisions=[("O/1", permit), ("O/2", other), ("O/3", permit), ("O/4", again), ("X/1", nobody)],
        request_decision=None,
    )
    grouped = _grouped_decisions([record, None])
    assert [(g.patient, g.rule_id, g.effect, g.resources) for g in grouped] == [
        ("p1", "zcc-contact", "permit", 3),
        ("p2", "default", "deny", 1),
    ]
    # a decision object is shared across requests (the PDP makes one per rule and patient): its facts are made per
    # count, and a later page with fewer resources says so
    record.decisions = [("O/5", permit)]
    assert [(g.rule_id, g.resources) for g in _grouped_decisions([record])] == [("zcc-contact", 1)]


def test_the_actor_is_each_request_s_own(services: Any) -> None:
    """Actors are remembered per identity, request context and forwarded address: each event names its own."""
    who = identity()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
        dispatch(services, Interaction("read", "GET", "Observation", "o1", headers={"x-forwarded-for": address}), who)
        read, _ = events(services)[-2:]
        client = next(agent for agent in read["agent"] if agent.get("network", {}).get("type") == "2")
        assert client["network"]["address"] == address
    dispatch(services, Interaction("read", "GET", "Observation", "o1",
                                   headers={"x-forwarded-for": "10.0.0.1"}), identity(client_id="other-app"))
    read, _ = events(services)[-2:]
    assert "other-app" in {agent["who"].get("identifier", {}).get("value") for agent in read["agent"]}


def test_authz_consent_events_of_one_shared_decision_carry_each_request_s_own_details() -> None:
    """What an AuthZconsent says of its decision is made once per decision and shared; the decision id and the
    break-the-glass reason are each request's own, in their places."""
    from gateway.audit.events import Access, Actor, DecisionFacts, consent_event

    decision = DecisionFacts("p1", "permit", "btg", "v1", "en", "nl", "WGBO", ("btg-audit", "review"),
                             ("Consent/c1",), 2)
    actor = Actor(client_id="c", purpose_of_use="BTG")
    first = consent_event(decision, Access("read", "GET", "Observation/o1", decision_id="d1", btg_reason="coma"),
                          actor, "2026-01-01T00:00:00.000000+00:00", "e1", "site")
    second = consent_event(decision, Access("read", "GET", "Observation/o1", decision_id="d2"),
                           actor, "2026-01-01T00:00:01.000000+00:00", "e2", "site")

    def details(event: dict[str, Any]) -> list[tuple[str, str]]:
        return [(d["type"], d["valueString"]) for d in event["entity"][-1]["detail"]]

    assert details(first) == [("decision-id", "d1"), ("effect", "permit"), ("rule", "btg"), ("policy", "v1"),
                              ("reason-en", "en"), ("reason-nl", "nl"), ("resources", "2"), ("legal-basis", "WGBO"),
                              ("obligation", "btg-audit"), ("obligation", "review"), ("btg-reason", "coma")]
    assert details(second)[0] == ("decision-id", "d2") and ("btg-reason", "coma") not in details(second)
    assert [e["what"]["reference"] for e in first["entity"][:-1]] == ["Patient/p1", "Consent/c1"]
    assert first["entity"][:-1] == second["entity"][:-1] and first["outcome"] == second["outcome"] == "0"
    assert (first["id"], second["id"]) == ("e1", "e2")
