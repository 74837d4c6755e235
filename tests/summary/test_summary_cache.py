"""The summary's record cache: a repeated summary is served from it, and any write touching what the summary was
built from — a compartment member, a referenced resource, the patient — is seen on the next request, also when
another process (here: a second set of services on the same database) wrote it. Consent and audit still run per
request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import build_services
from gateway.audit.schema import audit_event
from gateway.settings import Settings
from tests.summary import sources
from tests.summary.conftest import BASE

PATH = "/fhir/Patient/{}/$summary"
HAP = {"system": "http://nictiz.nl/fhir/NamingSystem/organization-type", "code": "N6"}


@pytest.fixture(scope="module")
def other_process(database_url: str):  # type: ignore[no-untyped-def]
    """Services of a second gateway process on the same database: its writes bypass this app's cache."""
    return build_services(Settings(database_url=database_url, base_url=BASE, validation="off"))


@pytest.fixture(scope="module")
def seeded(services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    store = services.store
    today = datetime.now(UTC).date().isoformat()
    with store.write() as connection:
        patient, _ = store.save(connection, {"resourceType": "Patient", "name": [{"text": "Cache Patiënt"}]})
        subject = {"reference": f"Patient/{patient.id}"}
        organization, _ = store.save(connection, {"resourceType": "Organization", "name": "Huisartsenpost Oud"})
        flag, _ = store.save(connection, {"resourceType": "Flag", "status": "active", "subject": subject,
                                          "meta": {"tag": [HAP]}, "code": {"text": "Valrisico"}})
        condition, _ = store.save(connection, {
            "resourceType": "Condition", "subject": subject, "meta": {"tag": [HAP]}, "onsetDateTime": today,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertensie"}]},
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}})
        store.save(connection, {
            "resourceType": "Provenance", "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
            "target": [subject, {"reference": f"Condition/{condition.id}"}],
            "agent": [{"who": {"reference": f"Organization/{organization.id}"}}]})
    sources.add_contact(store, patient.id)
    return {"patient": patient.id, "organization": organization.id, "flag": flag.id, "condition": condition.id}


def cache_of(app: Any) -> Any:  # type: ignore[no-untyped-def]
    return app.state.services.pipeline.operations["summary"].handler.cache


def summary(client: Any, headers: dict[str, str], patient: str) -> dict[str, Any]:
    response = client.get(PATH.format(patient), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def without_identity(bundle: dict[str, Any]) -> dict[str, Any]:
    """The document minus what is new on every request (ids, timestamps)."""
    entries = [entry["resource"] for entry in bundle["entry"]]
    composition = {k: v for k, v in entries[0].items() if k not in {"id", "date"}}
    return {"composition": composition, "entries": entries[1:]}


def section_text(bundle: dict[str, Any], code: str) -> str:
    composition = bundle["entry"][0]["resource"]
    return next(s["text"]["div"] for s in composition["section"] if s["code"]["coding"][0]["code"] == code)


def entry_refs(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def update(store: Any, resource_type: str, resource_id: str, change: Any) -> None:
    with store.write() as connection:
        body = store.get(connection, resource_type, resource_id).resource()
        change(body)
        store.save(connection, body, resource_id)


def test_a_repeated_summary_comes_from_the_cache_and_is_the_same(client, app, as_hap, seeded) -> None:  # type: ignore[no-untyped-def]
    first = summary(client, as_hap(), seeded["patient"])
    hits = cache_of(app).hits
    second = summary(client, as_hap(), seeded["patient"])
    assert cache_of(app).hits == hits + 1
    assert without_identity(second) == without_identity(first)
    assert second["id"] != first["id"] and second["entry"][0]["resource"]["id"] != first["entry"][0]["resource"]["id"]


def test_each_request_is_judged_and_audited(client, app, as_hap, seeded, services) -> None:  # type: ignore[no-untyped-def]
    summary(client, as_hap(), seeded["patient"])  # warm
    responses = [client.get(PATH.format(seeded["patient"]), headers=as_hap()) for _ in range(2)]
    decisions = {response.headers["X-Zcc-Decision-Id"] for response in responses}
    assert len(decisions) == 2
    with services.store.read() as connection:
        events = [bytes(row.body).decode() if not isinstance(row.body, str) else row.body
                  for row in connection.execute(select(audit_event))]
    for decision, response in zip(sorted(decisions), sorted(responses, key=lambda r: r.headers["X-Zcc-Decision-Id"]),
                                  strict=True):
        mine = [event for event in events if decision in event and '"rest"' in event]
        assert len(mine) == 1
        assert all(ref in mine[0] for ref in entry_refs(response.json()) if not ref.startswith("Composition/"))


def test_a_member_changed_by_another_process_is_seen(client, as_hap, seeded, other_process) -> None:  # type: ignore[no-untyped-def]
    before = summary(client, as_hap(), seeded["patient"])
    assert "Hypertensie" in section_text(before, "11450-4")

    def rename(body: dict[str, Any]) -> None:
        body["code"]["coding"][0]["display"] = "Hoge bloeddruk"

    update(other_process.store, "Condition", seeded["condition"], rename)
    after = summary(client, as_hap(), seeded["patient"])
    assert "Hoge bloeddruk" in section_text(after, "11450-4") and "Hypertensie" not in section_text(after, "11450-4")


def test_a_new_and_a_deleted_member_are_seen(client, as_hap, seeded, other_process) -> None:  # type: ignore[no-untyped-def]
    summary(client, as_hap(), seeded["patient"])
    store = other_process.store
    with store.write() as connection:
        added, _ = store.save(connection, {"resourceType": "Flag", "status": "active", "meta": {"tag": [HAP]},
                                           "subject": {"reference": f"{BASE}/Patient/{seeded['patient']}"},
                                           "code": {"text": "Agressie"}})
    after = summary(client, as_hap(), seeded["patient"])
    assert f"Flag/{added.id}" in entry_refs(after)  # an absolute reference under our base counts too
    with store.write() as connection:
        store.delete(connection, "Flag", seeded["flag"])
    gone = summary(client, as_hap(), seeded["patient"])
    assert f"Flag/{seeded['flag']}" not in entry_refs(gone) and f"Flag/{added.id}" in entry_refs(gone)


def test_a_changed_referenced_resource_and_patient_are_seen(client, as_hap, seeded, other_process) -> None:  # type: ignore[no-untyped-def]
    before = summary(client, as_hap(), seeded["patient"])
    assert "Huisartsenpost Oud" in section_text(before, "11450-4")  # the source column names the organisation
    update(other_process.store, "Organization", seeded["organization"], lambda body: body.update(name="HAP Nieuw"))
    after = summary(client, as_hap(), seeded["patient"])
    assert "HAP Nieuw" in section_text(after, "11450-4")
    update(other_process.store, "Patient", seeded["patient"], lambda body: body.update(name=[{"text": "Ander Naam"}]))
    renamed = summary(client, as_hap(), seeded["patient"])
    assert renamed["entry"][0]["resource"]["subject"]["display"] == "Ander Naam"
    assert renamed["entry"][1]["resource"]["name"] == [{"text": "Ander Naam"}]


def test_the_currency_check_agrees_with_the_rows_and_sees_a_write(client, app, as_hap, seeded, services,  # type: ignore[no-untyped-def]
                                                                   other_process) -> None:
    """The check behind every cache hit: on PostgreSQL a digest computed by the database, which must equal the
    digest of the rows the record was read from; on either backend it must turn false after a write."""
    from gateway.consent.engine import ConsentEngine
    from gateway.summary.collect import digest_query, fingerprint, fingerprint_digest

    compartment = ConsentEngine.build(services.packages, BASE).describer.compartment
    summary(client, as_hap(), seeded["patient"])
    collected = cache_of(app)._entries[seeded["patient"]]
    with services.store.engine.connect() as connection:
        assert collected.is_current(connection, compartment, seeded["patient"])
        rows = fingerprint(connection, compartment, seeded["patient"], BASE, collected.followed)
        assert rows == collected.fingerprint
        if connection.dialect.name == "postgresql":
            query = digest_query(compartment, seeded["patient"], BASE, collected.followed)
            assert connection.execute(query).scalar() == fingerprint_digest(rows)
    update(other_process.store, "Condition", seeded["condition"], lambda body: body.update(recordedDate="2020-01-01"))
    with services.store.engine.connect() as connection:
        assert not collected.is_current(connection, compartment, seeded["patient"])
