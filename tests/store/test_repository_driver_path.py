"""PostgreSQL, inside a transaction: the store's `get` and `save` run their statements on the driver's cursor, not
through SQLAlchemy's execution; what they store and return is what the SQLAlchemy path (outside a transaction)
stores and returns, and a driver error is raised as SQLAlchemy's."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DataError, DBAPIError

from gateway.store.repository import ResourceStore
from gateway.store.schema import resource, resource_version
from tests.store.test_repository import OBSERVATION, all_index_rows


@pytest.fixture()
def store(pg_store: ResourceStore) -> ResourceStore:
    return pg_store


def through_sqlalchemy(store: ResourceStore) -> list[str]:
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def save_in_transaction(store: ResourceStore, body: dict[str, Any], resource_id: str) -> Any:
    with store.write() as connection:
        return store.save(connection, copy.deepcopy(body), resource_id)


def save_outside_transaction(store: ResourceStore, body: dict[str, Any], resource_id: str) -> Any:
    with store.engine.connect() as connection:  # SQLAlchemy begins the transaction itself
        assert not connection.in_transaction()
        saved = store.save(connection, copy.deepcopy(body), resource_id)
        connection.commit()
    return saved


def stored(store: ResourceStore, resource_id: str) -> tuple[Any, ...]:
    with store.engine.connect() as connection:
        row = connection.execute(select(resource.c.type, resource.c.version, resource.c.deleted, resource.c.body)
                                 .where(resource.c.id == resource_id)).one()
        versions = connection.execute(select(resource_version.c.version, resource_version.c.method)
                                      .where(resource_version.c.id == resource_id)
                                      .order_by(resource_version.c.version)).all()
    body = row.body.replace(resource_id.encode(), b"ID")
    return row.type, row.version, row.deleted, _without_time(body), [tuple(v) for v in versions]


def _without_time(body: bytes) -> bytes:
    start = body.index(b'"lastUpdated":"') + len(b'"lastUpdated":"')
    return body[:start] + body[body.index(b'"', start):]


def test_in_a_transaction_no_statement_goes_through_sqlalchemy(store: ResourceStore) -> None:
    statements = through_sqlalchemy(store)
    with store.write() as connection:
        assert store.get(connection, "Observation", "o1") is None
        first, created = store.save(connection, copy.deepcopy(OBSERVATION), "o1")
        again = store.get(connection, "Observation", "o1")
        second, created_again = store.save(connection, {**OBSERVATION, "status": "amended"}, "o1")
    assert [s for s in statements if "resource" in s] == []
    assert created and not created_again
    assert again == first
    assert (second.version, second.deleted) == (2, False)


def test_the_driver_path_stores_what_the_sqlalchemy_path_stores(store: ResourceStore) -> None:
    changed = {**OBSERVATION, "status": "amended"}
    for body in (OBSERVATION, OBSERVATION, changed):  # create, unchanged update, changed update
        driver, driver_created = save_in_transaction(store, body, "driver")
        plain, plain_created = save_outside_transaction(store, body, "plain")
        assert driver_created == plain_created
        assert (driver.type, driver.version, driver.deleted) == (plain.type, plain.version, plain.deleted)
        assert stored(store, "driver") == stored(store, "plain")
        assert all_index_rows(store, "Observation", "driver") == all_index_rows(store, "Observation", "plain")
    with store.write() as connection:
        found = store.get(connection, "Observation", "driver")
    with store.engine.connect() as connection:
        assert store.get(connection, "Observation", "driver") == found


def test_a_driver_error_is_raised_as_sqlalchemys(store: ResourceStore) -> None:
    too_long = "x" * 65  # the id column holds 64 characters
    with pytest.raises(DataError) as on_driver:
        save_in_transaction(store, OBSERVATION, too_long)
    with pytest.raises(DataError) as on_sqlalchemy:
        save_outside_transaction(store, OBSERVATION, too_long)
    assert isinstance(on_driver.value, DBAPIError)
    assert type(on_driver.value.orig) is type(on_sqlalchemy.value.orig)
    with store.write() as connection:  # the store is usable afterwards
        assert store.save(connection, copy.deepcopy(OBSERVATION), "after")[1]
