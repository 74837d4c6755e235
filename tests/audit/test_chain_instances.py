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


def test_concurrent_appends_on_their_own_writer_connections_keep_one_chain(
    database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Reads are audited in a transaction of their own (`append_all(engine, ...)`: a per-thread writer connection
    on SQLite, a pooled one on PostgreSQL), two events per interaction with their patients; mixed with appends
    joining a caller's transaction, from two instances at once: one intact chain, and the CLI's verify agrees."""
    from typer.testing import CliRunner

    from gateway.audit.cli import audit_app
    from gateway.audit.log import Pending

    upgrade(create_database_engine(database_url))
    engines = [create_database_engine(database_url) for _ in range(INSTANCES)]
    failures: list[BaseException] = []

    def alone(engine: Engine, name: str) -> Callable[[], None]:
        log = AuditLog()

        def run() -> None:
            try:
                for n in range(EVENTS):
                    recorded = f"2026-01-01T00:01:{n:02d}.000000+00:00"
                    read = {"resourceType": "AuditEvent", "id": f"{name}-r{n}", "outcome": "0", "recorded": recorded}
                    decision = {**read, "id": f"{name}-d{n}"}
                    log.append_all(engine, [Pending(read, "PatientRead", (name,), name, built=True),
                                            Pending(decision, "AuthZconsent", (name,), name, built=True)])
            except BaseException as problem:  # noqa: BLE001 - reported by the test
                failures.append(problem)

        return run

    threads = [threading.Thread(target=alone(engine, f"a{i}t{t}")) for i, engine in enumerate(engines)
               for t in range(THREADS)]
    threads += [threading.Thread(target=writer(engine, f"w{i}", failures)) for i, engine in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with engines[0].connect() as connection:
        result = AuditLog().verify(connection)
        rows = list(AuditLog().rows(connection))
        patients = AuditLog().events_for_patient(connection, "a0t0")
    assert result.ok, result.broken
    assert result.count == len(rows) == INSTANCES * THREADS * EVENTS * 2 + INSTANCES * EVENTS
    assert len(patients) == EVENTS * 2
    for engine in engines:
        engine.dispose()
    monkeypatch.setenv("ZCC_DATABASE_URL", database_url)  # the CLI sets it from --database
    verified = CliRunner().invoke(audit_app, ["verify", "--database", database_url, "--key-dir", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
