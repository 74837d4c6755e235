"""Index rows extracted ahead of a save (`ResourceStore.prepare_index`, outside the write transaction): a save of
exactly that content uses them instead of extracting again, and stores the same index rows as a save without them;
any other content is extracted as usual."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from conformance import fhirjson
from conformance.packages import PackageSet
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.store import repository
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore, _index_key, _stamped
from tests.pg import fresh_database
from tests.store.test_repository import OBSERVATION, all_index_rows

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z", "tag": [{"code": "t"}]},
    "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
    "name": [{"family": "Jansen", "given": ["Jan"]}],
    "gender": "male",
    "birthDate": "1970-01-01",
    "generalPractitioner": [{"reference": "Practitioner/gp"}],
}


class CountingIndexer:
    def __init__(self, registry: SearchParameterRegistry) -> None:
        self.registry = registry
        self.calls: list[bytes] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        self.calls.append(fhirjson.dumps(body))
        return extract_index_rows(body, self.registry)


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest, packages: PackageSet, tmp_path) -> Iterator[tuple[ResourceStore, ...]]:  # type: ignore[no-untyped-def]
    """Two stores on two databases of one kind, each with a counting indexer."""
    registry = SearchParameterRegistry(packages)
    made = []
    for name in ("prepared", "plain"):
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / name}.db"
        else:
            url = fresh_database(request.getfixturevalue("pg_url"), f"prepared_{name}")
        engine = create_database_engine(url)
        upgrade(engine)
        made.append(ResourceStore(engine, CountingIndexer(registry)))
    yield tuple(made)
    for store in made:
        store.engine.dispose()


def save(store: ResourceStore, body: dict[str, Any]) -> None:
    with store.write() as connection:
        store.save(connection, copy.deepcopy(body), body["id"])


def test_a_prepared_save_uses_the_rows_and_stores_the_same_index(stores: tuple[ResourceStore, ...]) -> None:
    prepared, plain = stores
    observation = {**OBSERVATION, "id": "o1"}
    for store in stores:
        save(store, PATIENT)
        save(store, observation)
    changed = {**observation, "status": "amended", "valueQuantity": {**OBSERVATION["valueQuantity"], "value": 81}}
    prepared.prepare_index([changed])
    extracted = len(prepared.indexer.calls)  # type: ignore[attr-defined]
    save(prepared, changed)
    assert len(prepared.indexer.calls) == extracted  # type: ignore[attr-defined]  # not extracted again
    assert not prepared._prepared  # used once
    save(plain, changed)
    for resource_type, resource_id in (("Observation", "o1"), ("Patient", "p1")):
        assert all_index_rows(prepared, resource_type, resource_id) == all_index_rows(plain, resource_type, resource_id)
    assert all_index_rows(prepared, "Observation", "o1")["token"]  # there is something to compare


def test_other_content_is_extracted_as_usual(stores: tuple[ResourceStore, ...]) -> None:
    store = stores[0]
    store.prepare_index([PATIENT])
    other = {**PATIENT, "gender": "female"}
    calls = len(store.indexer.calls)  # type: ignore[attr-defined]
    save(store, other)
    assert len(store.indexer.calls) == calls + 1  # type: ignore[attr-defined]
    assert len(store._prepared) == 1  # the prepared content is still waiting for its save
    assert all_index_rows(store, "Patient", "p1") == all_index_rows_of(stores[1], other)
    other_id = {**PATIENT, "id": "p2"}  # the same content under another id is other content
    save(store, other_id)
    assert len(store.indexer.calls) == calls + 2  # type: ignore[attr-defined]


def all_index_rows_of(store: ResourceStore, body: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    save(store, body)
    return all_index_rows(store, body["resourceType"], body["id"])


def test_a_replaced_indexer_does_not_take_rows_prepared_by_the_old_one(stores: tuple[ResourceStore, ...]) -> None:
    store = stores[0]
    store.prepare_index([PATIENT])
    replacement = CountingIndexer(store.indexer.registry)  # type: ignore[attr-defined]
    store.indexer = replacement
    save(store, PATIENT)
    assert len(replacement.calls) == 1


def test_index_rows_do_not_depend_on_version_or_time(packages: PackageSet) -> None:
    """What prepare_index relies on: rows extracted with placeholders are the rows of any version and time."""
    registry = SearchParameterRegistry(packages)
    for body in (PATIENT, {**OBSERVATION, "id": "o1"}):
        rows = [extract_index_rows(_stamped(body, body["id"], version, when), registry)
                for version, when in ((1, repository._PREPARED_TIME), (42, "2026-11-23T17:00:00.123456+00:00"))]
        assert rows[0] == rows[1]
        assert any(rows[0].values())


def test_the_key_leaves_out_exactly_the_version_and_time() -> None:
    def key(body: dict[str, Any], version: int, when: str) -> bytes | None:
        stamped = _stamped(body, body["id"], version, when)
        return _index_key(fhirjson.dumps(stamped), body["resourceType"], body["id"], version, when)

    first = key(PATIENT, 1, "2020-01-01T00:00:00.000000+00:00")
    assert first is not None
    assert first == key(PATIENT, 12, "2026-11-23T17:00:00.123456+00:00")
    assert first != key({**PATIENT, "gender": "female"}, 1, "2020-01-01T00:00:00.000000+00:00")
    assert first != key({**PATIENT, "id": "p2"}, 1, "2020-01-01T00:00:00.000000+00:00")
    assert first != key({**PATIENT, "meta": {"tag": [{"code": "u"}]}}, 1, "2020-01-01T00:00:00.000000+00:00")
    # bytes that are not a stamped version of that resource have no key (a save then extracts)
    data = fhirjson.dumps(_stamped(PATIENT, "p1", 1, "2020-01-01T00:00:00.000000+00:00"))
    assert _index_key(data, "Patient", "p1", 2, "2020-01-01T00:00:00.000000+00:00") is None
    assert _index_key(data, "Patient", "p2", 1, "2020-01-01T00:00:00.000000+00:00") is None
    unordered = {**PATIENT, "meta": {"tag": [{"code": "t"}], "versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z"}}
    assert _index_key(fhirjson.dumps(unordered), "Patient", "p1", 7, "2020-01-01T00:00:00Z") is None
    assert _index_key(fhirjson.dumps(PATIENT), "Patient", "p1", 7, "2020-01-01T00:00:00Z") is not None  # stamped


def test_at_most_so_many_are_kept(stores: tuple[ResourceStore, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    store = stores[0]
    monkeypatch.setattr(repository, "PREPARED_INDEX_SIZE", 3)
    store.prepare_index([{**PATIENT, "id": f"p{n}"} for n in range(5)])
    assert len(store._prepared) == 3
    calls = len(store.indexer.calls)  # type: ignore[attr-defined]
    save(store, {**PATIENT, "id": "p0"})  # dropped: extracted again
    save(store, {**PATIENT, "id": "p4"})  # kept: not
    assert len(store.indexer.calls) == calls + 1  # type: ignore[attr-defined]
