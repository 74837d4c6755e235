"""The resource store's write path on SQLite and PostgreSQL: versions, the search index after creates, updates
(changed and unchanged content) and deletes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from conformance import fhirjson
from conformance.packages import PackageSet
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore
from gateway.store.schema import INDEX_TABLES, resource_version
from tests.pg import fresh_database

OBSERVATION = {
    "resourceType": "Observation",
    "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"], "tag": [{"code": "t"}]},
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "vital-signs"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2020-01-01T10:00:00+01:00",
    "valueQuantity": {"value": 80, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, packages: PackageSet, tmp_path) -> Iterator[ResourceStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = fresh_database(request.getfixturevalue("pg_url"), "store")
    engine = create_database_engine(url)
    upgrade(engine)
    registry = SearchParameterRegistry(packages)
    yield ResourceStore(engine, lambda body: extract_index_rows(body, registry))
    engine.dispose()


def index_rows(store: ResourceStore, resource_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every index row of the resource, per kind, without the row keys (comparable across writes)."""
    with store.read() as connection:
        current = store.get(connection, "Observation", resource_id)
        assert current is not None
        rows = {}
        for kind, table in INDEX_TABLES.items():
            columns = [c for c in table.c if c.name not in {"res_key", "id"}]
            found = connection.execute(select(*columns).where(table.c.res_key == current.res_key)).all()
            rows[kind] = sorted(tuple(row) for row in found)
        return rows


def save(store: ResourceStore, body: dict[str, Any], resource_id: str = "o1") -> int:
    with store.write() as connection:
        stored, _ = store.save(connection, copy.deepcopy(body), resource_id)
    return stored.version


def tracing_cursor(statements: list[str]) -> type:
    """A psycopg cursor class that records every statement it runs."""
    import psycopg

    class Tracing(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            statements.append(str(query))
            return super().execute(query, *args, **kwargs)

    return Tracing


def versions(store: ResourceStore) -> int:
    with store.read() as connection:
        return connection.execute(select(func.count()).select_from(resource_version)).scalar_one()


def test_an_unchanged_update_is_a_new_version_with_the_same_index(store: ResourceStore) -> None:
    save(store, OBSERVATION)
    before = index_rows(store, "o1")
    assert before["token"] and before["reference"] and before["quantity"] and before["date"]
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    # the store writes on the driver's cursor in a transaction: trace the driver (the next write connects afresh)
    if store.engine.dialect.name == "sqlite":
        event.listen(store.engine, "connect", lambda driver, _: driver.set_trace_callback(statements.append))
    else:
        event.listen(store.engine, "connect", lambda driver, _: setattr(driver, "cursor_factory",
                                                                        tracing_cursor(statements)))
    store.engine.dispose()
    indexed = store.indexer
    store.indexer = lambda body: pytest.fail("the unchanged update was indexed again")  # type: ignore[assignment]
    assert save(store, OBSERVATION) == 2
    assert save(store, OBSERVATION) == 3
    assert statements and not [s for s in statements if "idx_" in s]  # the index was not rewritten
    assert any("resource_version" in s for s in statements)
    store.indexer = indexed
    assert versions(store) == 3
    assert index_rows(store, "o1") == before


def test_a_changed_update_reindexes_every_kind(store: ResourceStore) -> None:
    save(store, OBSERVATION)
    original = index_rows(store, "o1")
    changed = copy.deepcopy(OBSERVATION)
    changed["status"] = "amended"
    changed["meta"]["tag"] = [{"code": "u"}]  # meta content other than versionId/lastUpdated is indexed too
    changed["valueQuantity"]["value"] = 81
    save(store, changed)
    tokens = index_rows(store, "o1")["token"]
    assert any("amended" in row for row in tokens) and not any("final" in row for row in tokens)
    assert any("u" in row for row in tokens) and not any("t" in row for row in tokens)
    assert index_rows(store, "o1")["quantity"] not in ([], original["quantity"])
    reordered = dict(reversed(list(OBSERVATION.items())))  # same content, other key order: re-indexed, same rows
    save(store, OBSERVATION)
    expected = index_rows(store, "o1")
    save(store, reordered)
    assert index_rows(store, "o1") == expected


def test_an_update_after_a_delete_indexes_again(store: ResourceStore) -> None:
    save(store, OBSERVATION)
    before = index_rows(store, "o1")
    with store.write() as connection:
        assert store.delete(connection, "Observation", "o1") is not None
    with store.read() as connection:
        key = store.get(connection, "Observation", "o1").res_key  # type: ignore[union-attr]
        assert all(connection.execute(select(func.count()).select_from(table).where(table.c.res_key == key))
                   .scalar_one() == 0 for table in INDEX_TABLES.values())
    assert save(store, OBSERVATION) == 3
    assert index_rows(store, "o1") == before


RISK = {
    "resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/p1"},
    "identifier": [{"value": "no-system"}],  # a NULL among the values of a column
    "prediction": [{"probabilityDecimal": 0.25, "outcome": {"text": "x"}}], "occurrenceDateTime": "2020-01-02",
    "basis": [{"reference": "http://other.example/fhir/Observation/9"}],  # an absolute reference: url, no id
}


def all_index_rows(store: ResourceStore, resource_type: str, resource_id: str) -> dict[str, list[tuple[Any, ...]]]:
    with store.read() as connection:
        key = store.get(connection, resource_type, resource_id).res_key  # type: ignore[union-attr]
        return {kind: sorted(tuple(row) for row in connection.execute(
                    select(*[c for c in table.c if c.name != "res_key"]).where(table.c.res_key == key)).all())
                for kind, table in INDEX_TABLES.items()}


def test_both_databases_store_the_same_index_rows(packages: PackageSet, pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL writes a resource's version and index rows in one statement (JSON through json_to_recordset), SQLite
    row by row: the rows are the same, every kind, NULLs and floats included, after a create, a changed update
    and a delete."""
    registry = SearchParameterRegistry(packages)
    stores = []
    for url in (f"sqlite:///{tmp_path / 'both.db'}", fresh_database(pg_url, "both")):
        engine = create_database_engine(url)
        upgrade(engine)
        stores.append(ResourceStore(engine, lambda body: extract_index_rows(body, registry)))
    changed = {**copy.deepcopy(RISK), "prediction": [{"probabilityDecimal": 0.5}], "status": "amended"}
    seen = []
    for store in stores:
        rows = []
        for body in (OBSERVATION, RISK, changed):
            with store.write() as connection:
                store.save(connection, copy.deepcopy(body), "r1" if body is not OBSERVATION else "o1")
            rows.append(all_index_rows(store, body["resourceType"], "r1" if body is not OBSERVATION else "o1"))
        with store.write() as connection:
            store.delete(connection, "RiskAssessment", "r1")
        rows.append(all_index_rows(store, "RiskAssessment", "r1"))
        seen.append(rows)
        store.engine.dispose()
    assert seen[0] == seen[1]
    created, amended, deleted = seen[0][1], seen[0][2], seen[0][3]
    assert created["number"] and created["reference"] and created["token"] and created["date"]
    assert ("identifier", None, "no-system", None) in created["token"]
    assert amended["number"] != created["number"]
    assert all(rows == [] for rows in deleted.values())


def test_the_one_statement_write_names_only_the_index_kinds_that_get_rows() -> None:
    """PostgreSQL plans every statement anew: an INSERT part per index kind with rows, none for the others."""
    from gateway.store.repository import _write_in_one_statement

    version_row = {"res_key": 1, "type": "Patient", "id": "p", "method": "POST", "version": 1,
                   "last_updated": "2026-01-01T00:00:00.000000+00:00", "deleted": False, "body": b"{}"}
    rows = {"token": [{"param": "gender", "system": None, "code": "male", "text": None}], "string": [], "date": []}
    sql, parameters = _write_in_one_statement(version_row, update=False, clear=False, rows=rows)
    assert "i_token AS (INSERT INTO idx_token" in sql and "i_string" not in sql and "i_date" not in sql
    assert json.loads(parameters["token"]) == rows["token"] and "string" not in parameters
    cleared, _ = _write_in_one_statement(version_row, update=True, clear=True, rows={})
    assert "INSERT INTO idx_" not in cleared and all(f"c_{kind} AS (DELETE" in cleared for kind in INDEX_TABLES)


def test_both_databases_index_a_decimal_beyond_float_range_alike(packages: PackageSet, pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A FHIR decimal too large for a float is indexed as infinite on both (PostgreSQL gets the index rows as JSON,
    which has no number for infinity), created and updated, with and without the hint that it is new."""
    registry = SearchParameterRegistry(packages)
    huge = fhirjson.loads(b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
                          b'"valueQuantity": {"value": 1E+400, "system": "http://unitsofmeasure.org", "code": "kg"}}')
    seen = []
    for url in (f"sqlite:///{tmp_path / 'huge.db'}", fresh_database(pg_url, "huge")):
        engine = create_database_engine(url)
        upgrade(engine)
        store = ResourceStore(engine, lambda body: extract_index_rows(body, registry))
        rows = []
        for resource_id, hinted in (("h1", True), ("h2", False)):
            for body in (huge, {**huge, "status": "amended"}):
                store.expect_new([("Observation", resource_id)] if hinted else [])
                with store.write() as connection:
                    store.save(connection, copy.deepcopy(body), resource_id)
                rows.append(all_index_rows(store, "Observation", resource_id))
        seen.append(rows)
        engine.dispose()
    assert seen[0] == seen[1]
    quantity = seen[1][0]["quantity"]
    assert quantity and all(row[1] == float("inf") for row in quantity)
