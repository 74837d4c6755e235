"""PostgreSQL: a resource the caller expects to be new (`ResourceStore.expect_new`, as ingestion hints the resources
it found absent) is created in one statement, without reading it first. When the hint is wrong - the resource
exists, was deleted, or is created concurrently - the save goes on as without the hint: the same versions, the
same index rows."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from sqlalchemy import select

from conformance.packages import PackageSet
from gateway.store import repository
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore
from gateway.store.schema import resource_version
from tests.store.test_repository import OBSERVATION, all_index_rows

CHANGED = {**OBSERVATION, "status": "amended",
           "valueQuantity": {"value": 7.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}


@pytest.fixture()
def store(pg_store: ResourceStore) -> ResourceStore:
    return pg_store


@pytest.fixture()
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL the store runs on the driver's cursor."""
    seen: list[str] = []
    execute = repository._DriverCursor.execute

    def counting(self: repository._DriverCursor, sql: str, parameters: Any) -> Any:
        seen.append(sql)
        return execute(self, sql, parameters)

    monkeypatch.setattr(repository._DriverCursor, "execute", counting)
    return seen


def save(store: ResourceStore, body: dict[str, Any], resource_id: str, expect_new: bool,
         if_match: int | None = None) -> tuple[Any, bool]:
    if expect_new:
        store.expect_new([(body["resourceType"], resource_id)])
    with store.write() as connection:
        return store.save(connection, copy.deepcopy(body), resource_id, if_match)


def versions(store: ResourceStore, resource_id: str) -> list[tuple[int, str, bool]]:
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(  # type: ignore[misc]
            select(resource_version.c.version, resource_version.c.method, resource_version.c.deleted)
            .where(resource_version.c.id == resource_id).order_by(resource_version.c.version))]


def delete(store: ResourceStore, resource_id: str) -> None:
    with store.write() as connection:
        assert store.delete(connection, "Observation", resource_id) is not None


def test_an_expected_new_resource_is_created_in_one_statement(store: ResourceStore, statements: list[str]) -> None:
    stored, created = save(store, OBSERVATION, "hinted", expect_new=True)
    assert len(statements) == 1 and statements[0].startswith("WITH r AS (INSERT INTO resource")
    assert (stored.version, stored.deleted, created) == (1, False, True)
    save(store, OBSERVATION, "plain", expect_new=False)
    assert len(statements) == 1 + 3  # without the hint: read (locking), insert, then version and index rows
    assert versions(store, "hinted") == versions(store, "plain") == [(1, "POST", False)]
    assert all_index_rows(store, "Observation", "hinted") == all_index_rows(store, "Observation", "plain")
    with store.read() as connection:
        assert store.get(connection, "Observation", "hinted").body == stored.body  # type: ignore[union-attr]


def test_a_hint_is_used_once_and_not_with_if_match(store: ResourceStore, statements: list[str]) -> None:
    save(store, OBSERVATION, "once", expect_new=True)
    statements.clear()
    with store.write() as connection:  # the hint was used: an update reads (and locks) the row first
        assert store.save(connection, copy.deepcopy(CHANGED), "once")[0].version == 2
    assert statements[0].endswith("FOR UPDATE")
    statements.clear()
    assert save(store, OBSERVATION, "once", expect_new=True, if_match=2)[0].version == 3
    assert statements[0].endswith("FOR UPDATE")
    with store.write() as connection:  # the hint of the if_match save is still there, for the next save
        assert store.save(connection, copy.deepcopy(CHANGED), "once")[0].version == 4
    assert len(statements) == 2 + 3  # ... whose create-first found the row and went on as usual (lock, write)


@pytest.mark.parametrize("deleted", [False, True], ids=["existing", "deleted"])
def test_a_wrong_hint_saves_as_without_it(store: ResourceStore, deleted: bool) -> None:
    for resource_id, hint in (("hinted", True), ("plain", False)):
        save(store, OBSERVATION, resource_id, expect_new=False)
        if deleted:
            delete(store, resource_id)
        stored, created = save(store, CHANGED, resource_id, expect_new=hint)
        assert (stored.version, created) == ((3, True) if deleted else (2, False))
        unchanged, created = save(store, CHANGED, resource_id, expect_new=hint)  # the same content again
        assert (unchanged.version, created) == ((4, False) if deleted else (3, False))
    assert versions(store, "hinted") == versions(store, "plain")
    hinted, plain = all_index_rows(store, "Observation", "hinted"), all_index_rows(store, "Observation", "plain")
    assert hinted == plain and hinted["token"] and hinted["quantity"]
    assert ("status", None, "amended", None) in hinted["token"]
    assert ("status", None, "final", None) not in hinted["token"]


@pytest.mark.parametrize("hint", [False, True], ids=["plain", "expected-new"])
def test_concurrent_creates_of_one_id(store: ResourceStore, hint: bool) -> None:
    """Two transactions create one id at once (ingestion's stable ids): the second's insert waits for the first's
    commit (unique key, ON CONFLICT DO NOTHING), then the save updates the row - with or without the hint (then
    its create-first wrote nothing): versions 1 and 2, no duplicate-key error, the index rows of version 2 only."""
    first_saved, results = threading.Event(), []

    def second() -> None:
        first_saved.wait(5)
        results.append(save(store, CHANGED, "race", expect_new=hint))

    racer = threading.Thread(target=second)
    racer.start()
    with store.write() as connection:
        stored, created = store.save(connection, copy.deepcopy(OBSERVATION), "race")
        first_saved.set()
        racer.join(0.5)
        assert racer.is_alive(), "the second create did not wait for the first"
    racer.join(10)
    assert (stored.version, created) == (1, True)
    (second_stored, second_created), = results
    assert (second_stored.version, second_created) == (2, False)
    assert versions(store, "race") == [(1, "POST", False), (2, "PUT", False)]
    rows = all_index_rows(store, "Observation", "race")
    assert ("status", None, "amended", None) in rows["token"] and ("status", None, "final", None) not in rows["token"]


def test_hints_are_ignored_on_sqlite(packages: PackageSet, tmp_path: Any) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'hints.db'}")
    upgrade(engine)
    store = ResourceStore(engine, lambda body: {})
    store.expect_new([("Observation", "x")])
    assert not store._expected_new
    engine.dispose()


def test_at_most_so_many_hints_are_kept(store: ResourceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository, "PREPARED_INDEX_SIZE", 3)
    store.expect_new([("Observation", f"o{n}") for n in range(5)])
    assert list(store._expected_new) == [("Observation", "o2"), ("Observation", "o3"), ("Observation", "o4")]
