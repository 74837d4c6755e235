"""Several gateway instances on one database share one chain: concurrent appenders from separate engines (separate
connection pools, as separate processes have) starting on an empty database leave one intact chain, in seq order."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from gateway.audit.log import AuditLog
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from tests.pg import fresh_database

INSTANCES, THREADS, EVENTS = 2, 3, 15


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chain.db'}"
    return fresh_database(request.getfixturevalue("pg_url"))


def writer(engine: Engine, name: str, failures: list[BaseException]) -> Callable[[], None]:
    log = AuditLog()

    def run() -> None:
        try:
            for n in range(EVENTS):
                with engine.connect().execution_options(write=True) as connection, connection.begin():
                    event = {"resourceType": "AuditEvent", "id": f"{name}-{n}", "outcome": "0",
                             "recorded": f"2026-01-01T00:00:{n:02d}.000000+00:00"}
                    log.append(connection, event, "PatientRead", [name], name)
        except BaseException as problem:  # noqa: BLE001 - reported by the test
            failures.append(problem)

    return run


def test_concurrent_instances_keep_one_intact_chain(database_url: str) -> None:
    upgrade(create_database_engine(database_url))
    engines = [create_database_engine(database_url) for _ in range(INSTANCES)]  # one pool per "instance"
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=writer(engine, f"i{i}t{t}", failures))
        for i, engine in enumerate(engines)
        for t in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with engines[0].connect() as connection:
        result = AuditLog().verify(connection)
        rows = list(AuditLog().rows(connection))
    assert result.ok, result.broken
    assert result.count == len(rows) == INSTANCES * THREADS * EVENTS
    assert [row.seq for row in rows] == sorted(row.seq for row in rows)
    for engine in engines:
        engine.dispose()
