"""facts.py against a real store: contacts, referrals (URA via Organization), Consents, consent-source errors."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from gateway.app import build_services
from gateway.consent.facts import FactsSource, _generation, fetch_facts
from gateway.search.extract import extract_index_rows
from gateway.settings import Settings
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore

BASE = "http://testserver/fhir"
URA = "http://fhir.nl/fhir/NamingSystem/ura"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    database = tmp_path_factory.mktemp("facts") / "gateway.db"
    built = build_services(Settings(database_url=f"sqlite:///{database}", base_url=BASE))
    with built.store.write() as connection:
        for body in [
            {"resourceType": "Organization", "id": "hap", "identifier": [{"system": URA, "value": "111"}]},
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "in-progress",
                "class": {"code": "EMER"},
                "subject": {"reference": f"{BASE}/Patient/p1"},
                "period": {"start": "2025-06-01T10:00:00Z"},
            },
            {
                "resourceType": "Task",
                "id": "t1",
                "status": "requested",
                "intent": "order",
                "for": {"reference": "Patient/p1"},
                "owner": {"reference": "Organization/hap"},
            },
            {
                "resourceType": "ServiceRequest",
                "id": "s1",
                "status": "active",
                "intent": "order",
                "subject": {"reference": "Patient/p1"},
                "performer": [{"identifier": {"system": URA, "value": "222"}}],
            },
            {
                "resourceType": "Consent",
                "id": "c1",
                "status": "inactive",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "category": [{"text": "mitz"}],
                "patient": {"reference": "Patient/p1"},
                "provision": {},
            },
            {
                "resourceType": "Encounter",
                "id": "e9",
                "status": "in-progress",
                "class": {"code": "EMER"},
                "subject": {"reference": "Patient/p9"},
                "period": {"start": "2025-06-01T10:00:00Z"},
            },
        ]:
            built.store.save(connection, body, body["id"])
    return built


def test_facts_from_the_store(services: Any, policy: Any) -> None:
    source = FactsSource(policy.parameters, BASE)
    with services.store.read() as connection:
        facts = fetch_facts(source, connection, ["p1", "p2"])
    p1 = facts["p1"]
    # the absolute reference under the base counts; a Task is both a possible contact and a referral
    assert sorted(c.reference for c in p1.contacts) == ["Encounter/e1", "Task/t1"]
    assert {r.reference: r.recipient_uras for r in p1.referrals} == {
        "Task/t1": frozenset({"111"}),
        "ServiceRequest/s1": frozenset({"222"}),
    }
    assert [(c.kind, c.origin) for c in p1.consents] == [("deny", "mitz")]
    assert facts["p2"].contacts == () and facts["p2"].consent_error is None


def test_consent_source_failure_fails_closed(services: Any, policy: Any) -> None:
    def failing(_: str) -> list[dict[str, Any]]:
        raise TimeoutError("mitz did not answer")

    source = FactsSource(policy.parameters, BASE, failing)
    with services.store.read() as connection:
        facts = fetch_facts(source, connection, ["p1"])
    assert facts["p1"].consents == () and facts["p1"].consent_error == "consent source unavailable (TimeoutError)"


def test_foreign_patient_references_get_no_facts(services: Any, policy: Any) -> None:
    source = FactsSource(policy.parameters, BASE)
    with services.store.read() as connection:
        facts = fetch_facts(source, connection, ["http://elsewhere/fhir/Patient/p1"])
    assert facts["http://elsewhere/fhir/Patient/p1"].contacts == ()


def test_other_references_to_the_patient_are_not_visited(services: Any, policy: Any) -> None:
    """The facts query seeks the reference index by the referencing type: Observations and Provenances about the
    patient (2 index rows each) do not change the facts, and the query does the same work with or without them
    (counted in SQLite virtual-machine steps); it runs without a snapshot transaction, as the consent stage
    reads it."""
    source = FactsSource(policy.parameters, BASE)

    def facts_and_steps() -> tuple[Any, int]:
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        with services.store.read(snapshot=False) as connection:
            raw = connection.connection.dbapi_connection
            raw.set_progress_handler(count, 1)
            try:
                facts = fetch_facts(source, connection, ["p1"])
            finally:
                raw.set_progress_handler(None, 1)
        return facts["p1"], steps

    before, steps_before = facts_and_steps()
    with services.store.write() as connection:
        for n in range(300):
            services.store.save(connection, {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                             "subject": {"reference": "Patient/p1"}}, f"obs{n}")
            services.store.save(connection, {"resourceType": "Provenance", "recorded": "2025-06-01T10:00:00Z",
                                             "target": [{"reference": "Patient/p1"}],
                                             "agent": [{"who": {"display": "ingest"}}]}, f"prov{n}")
    after, steps_after = facts_and_steps()
    assert after == before and sorted(c.reference for c in after.contacts) == ["Encounter/e1", "Task/t1"]
    assert steps_after == steps_before



def _statements(connection: Any) -> list[str]:
    """Collects the SQL the driver connection runs from now on (until the list is dropped)."""
    seen: list[str] = []
    connection.connection.dbapi_connection.set_trace_callback(seen.append)
    return seen


def test_remembered_facts_are_used_until_any_write_moves_the_store_generation(services: Any, policy: Any) -> None:
    """SQLite: a patient's facts are read once and then taken from memory while the store's resource generation
    (migration 0008) stands still; a write through the store, or straight into the database file by another
    connection, moves it, and the next request reads the facts afresh."""
    source = FactsSource(policy.parameters, BASE)

    def facts_for_p9() -> tuple[Any, list[str]]:
        with services.store.read(snapshot=False) as connection:
            seen = _statements(connection)
            try:
                facts = fetch_facts(source, connection, ["p9"])["p9"]
            finally:
                connection.connection.dbapi_connection.set_trace_callback(None)
        return facts, seen

    first, read = facts_for_p9()
    again, remembered = facts_for_p9()
    assert again == first and [c.reference for c in first.contacts] == ["Encounter/e9"]
    assert any("idx_reference" in sql for sql in read)
    assert remembered == ["SELECT n FROM resource_generation WHERE id = 1"]  # the counter, not the facts

    with services.store.write() as connection:  # a write through the store: a new contact for p9
        services.store.save(connection, {"resourceType": "EpisodeOfCare", "status": "active",
                                         "patient": {"reference": "Patient/p9"}}, "eoc9")
    after_write, read_again = facts_for_p9()
    assert sorted(c.reference for c in after_write.contacts) == ["Encounter/e9", "EpisodeOfCare/eoc9"]
    assert any("idx_reference" in sql for sql in read_again)

    other = sqlite3.connect(services.store.engine.url.database)  # another connection (another process alike)
    try:
        other.execute("UPDATE resource SET deleted = 1 WHERE type = 'EpisodeOfCare' AND id = 'eoc9'")
        other.commit()
    finally:
        other.close()
    after_other, _ = facts_for_p9()
    assert [c.reference for c in after_other.contacts] == ["Encounter/e9"]


def test_facts_read_inside_a_transaction_are_neither_remembered_nor_taken_from_memory(
    services: Any, policy: Any
) -> None:
    """A transaction's own writes may never commit: inside one, the facts are read from the store every time."""
    source = FactsSource(policy.parameters, BASE)
    with services.store.read(snapshot=False) as connection:
        fetch_facts(source, connection, ["p1"])  # remembered
    with pytest.raises(LookupError), services.store.write() as connection:  # rolled back at the end
        services.store.save(connection, {"resourceType": "EpisodeOfCare", "status": "active",
                                         "patient": {"reference": "Patient/p1"}}, "eoc1")
        seen = _statements(connection)
        inside = fetch_facts(source, connection, ["p1"])["p1"]
        connection.connection.dbapi_connection.set_trace_callback(None)
        assert "EpisodeOfCare/eoc1" in [c.reference for c in inside.contacts]
        assert not any("resource_generation" in sql for sql in seen)
        raise LookupError("roll back")
    with services.store.read(snapshot=False) as connection:
        outside = fetch_facts(source, connection, ["p1"])["p1"]
    assert "EpisodeOfCare/eoc1" not in [c.reference for c in outside.contacts]


def test_remembered_facts_belong_to_their_database(services: Any, policy: Any, tmp_path: Any) -> None:
    """Two databases at the same resource generation: what was read from one is never served for the other."""
    source = FactsSource(policy.parameters, BASE)

    def database(name: str, encounter: str) -> ResourceStore:
        engine = create_database_engine(f"sqlite:///{tmp_path / name}.db")
        upgrade(engine)
        store = ResourceStore(engine, lambda resource: extract_index_rows(resource, services.search))
        with store.write() as connection:
            store.save(connection, {"resourceType": "Encounter", "status": "in-progress", "class": {"code": "EMER"},
                                    "subject": {"reference": "Patient/px"}}, encounter)
        return store

    def contacts(store: ResourceStore) -> tuple[int | None, list[str]]:
        with store.read(snapshot=False) as connection:
            generation = _generation(connection)
            return generation, [c.reference for c in fetch_facts(source, connection, ["px"])["px"].contacts]

    first, second = database("one", "e-one"), database("two", "e-two")
    generation_one, from_one = contacts(first)
    generation_two, from_two = contacts(second)
    assert generation_one == generation_two is not None  # only the database tells them apart
    assert (from_one, from_two) == (["Encounter/e-one"], ["Encounter/e-two"])
