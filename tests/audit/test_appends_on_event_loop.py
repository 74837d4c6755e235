"""Audited reads served on the event loop (SQLite): the audit is appended there when that needs no waiting, and
otherwise on a worker thread before the answer, so a writer holding the database never stalls the loop and no
read is answered before its AuditEvent is committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

import gateway.fhir.routes as routes
from gateway.app import build_services, create_app
from gateway.audit.log import WAL_CHECKPOINT_EVERY, AuditLog, Pending
from gateway.settings import Settings
from gateway.store.engine import SingleStatements, create_database_engine
from gateway.store.migrate import upgrade

BASE = "http://testserver/fhir"


def _event(name: str) -> Pending:
    return Pending({"resourceType": "AuditEvent", "id": name, "outcome": "0",
                    "recorded": "2026-01-01T00:00:00.000000+00:00"}, "PatientRead", ("p1",), "c1")


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    engine = create_database_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    upgrade(engine)
    return engine


def _hold_write_lock(path: str, locked: threading.Event, release: threading.Event) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    locked.set()
    release.wait(10)
    holder.execute("COMMIT")
    holder.close()


def test_append_now_commits_when_the_database_is_free(engine: Engine) -> None:
    log = AuditLog()
    assert log.append_now(engine, [_event("free")]) is True
    with engine.connect() as connection:
        assert [row.event_id for row in log.rows(connection)] == ["free"]
        assert log.verify(connection).ok


def test_append_now_writes_nothing_and_does_not_wait_while_another_writer_holds_the_database(engine: Engine) -> None:
    log = AuditLog()
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(engine.url.database, locked, release))
    holder.start()
    locked.wait(5)
    try:
        started = time.perf_counter()
        assert log.append_now(engine, [_event("busy")]) is False
        assert time.perf_counter() - started < 0.5  # the busy timeout (seconds) was not waited for
    finally:
        release.set()
        holder.join(5)
    assert log.append_now(engine, [_event("after")]) is True  # the connection is usable afterwards
    with engine.connect() as connection:
        assert [row.event_id for row in log.rows(connection)] == ["after"]
        assert log.verify(connection).ok


def test_the_loop_never_checkpoints_the_log_itself_a_checkpoint_is_due_every_so_many_appends(engine: Engine) -> None:
    log = AuditLog()
    due = []
    for n in range(2 * WAL_CHECKPOINT_EVERY):
        assert log.append_now(engine, [_event(f"e{n}")])
        due.append(log.wal_checkpoint_due(engine))
    assert [n + 1 for n, flag in enumerate(due) if flag] == [WAL_CHECKPOINT_EVERY, 2 * WAL_CHECKPOINT_EVERY]
    loop_connection = SingleStatements.of(engine, waiting=False).connection().connection.dbapi_connection
    assert loop_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no fsync there
    database = Path(str(engine.url.database))
    before = database.stat().st_size  # the appends are in the write-ahead log only ...
    log.checkpoint_wal(engine)
    assert database.stat().st_size > before  # ... until the checkpoint copies them into the database


def test_the_loop_appends_on_the_connection_its_reads_are_made_on_so_their_page_cache_stays_warm(
    engine: Engine,
) -> None:
    loop = SingleStatements.of(engine, waiting=False).connection().connection.dbapi_connection
    other = sqlite3.connect(str(engine.url.database))
    seen_by_loop, seen_by_other = (c.execute("PRAGMA data_version").fetchone()[0] for c in (loop, other))
    assert AuditLog().append_now(engine, [_event("own")]) is True
    # data_version moves for a connection when *another* connection commits (and SQLite then drops its cache)
    assert loop.execute("PRAGMA data_version").fetchone()[0] == seen_by_loop
    assert other.execute("PRAGMA data_version").fetchone()[0] != seen_by_other
    other.close()


def test_append_now_defers_while_a_read_is_open_on_the_loop_connection(engine: Engine) -> None:
    log = AuditLog()
    loop = SingleStatements.of(engine, waiting=False).connection().connection.dbapi_connection
    loop.execute("BEGIN")
    try:
        assert log.append_now(engine, [_event("later")]) is False  # nothing written, nothing broken
    finally:
        loop.execute("COMMIT")
    assert log.append_now(engine, [_event("now")]) is True
    with engine.connect() as connection:
        assert [row.event_id for row in log.rows(connection)] == ["now"]


def test_append_now_declines_where_a_commit_could_wait() -> None:
    memory = create_database_engine("sqlite://")
    upgrade(memory)
    assert AuditLog().append_now(memory, [_event("m")]) is False  # the pool's one connection: not ours to lock


# -- through the HTTP boundary ---------------------------------------------------------------------------------


@pytest.fixture
def gateway(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ZCC_INSECURE_DEV", "1")
    database = tmp_path / "gateway.db"
    services = build_services(Settings(database_url=f"sqlite:///{database}", base_url=BASE, validation="off"))
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    with services.store.write() as connection:
        for body in [{"resourceType": "Patient", "id": "pa"},
                     {"resourceType": "Encounter", "id": "ea", "status": "in-progress", "class": {"code": "EMER"},
                      "subject": {"reference": "Patient/pa"}, "period": {"start": start}},
                     {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "pulse"},
                      "subject": {"reference": "Patient/pa"}}]:
            services.store.save(connection, body, body["id"])
    hand_offs: list[str] = []
    run_in_threadpool = routes.run_in_threadpool

    async def counted(function, *args):  # type: ignore[no-untyped-def]
        hand_offs.append(getattr(function, "__name__", str(function)))
        return await run_in_threadpool(function, *args)

    monkeypatch.setattr(routes, "run_in_threadpool", counted)
    app = create_app(services=services)
    # the capacity outbox worker claims its rows in a write transaction at start and every second: a writer the
    # loop's append rightly does not wait for (it would be appended on a worker thread). These tests bring their own.
    services.capacity.hub.stop()
    return services, app, str(database), hand_offs


def _events_about(services, patient: str) -> list[str]:  # type: ignore[no-untyped-def]
    with services.store.engine.connect() as connection:
        return [event["id"] for event in AuditLog().events_for_patient(connection, patient)]


async def _get(app, path: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return await client.get(path, headers={"Accept": "application/fhir+json"})


def test_an_audited_read_on_a_free_database_is_served_and_audited_on_the_loop(gateway) -> None:  # type: ignore[no-untyped-def]
    services, app, _, hand_offs = gateway
    before = _events_about(services, "pa")
    response = asyncio.run(_get(app, "/fhir/Observation/o1"))
    assert response.status_code == 200
    assert hand_offs == []  # no thread hand-off at all
    assert len(_events_about(services, "pa")) > len(before)  # committed before the answer


def test_an_audited_read_behind_a_writer_does_not_stall_the_loop_and_is_audited_before_its_answer(gateway) -> None:  # type: ignore[no-untyped-def]
    services, app, database, hand_offs = gateway
    asyncio.run(_get(app, "/fhir/Observation/o1"))  # warm up
    hand_offs.clear()  # only the request behind the writer counts (the warm-up's append may have been deferred too)
    before = _events_about(services, "pa")
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(database, locked, release))
    holder.start()
    locked.wait(5)
    hold = 0.5
    threading.Timer(hold, release.set).start()

    async def scenario() -> tuple[httpx.Response, float, float]:
        worst, done = 0.0, asyncio.Event()

        async def ticker() -> None:
            nonlocal worst
            while not done.is_set():
                tick = time.perf_counter()
                await asyncio.sleep(0.005)
                worst = max(worst, time.perf_counter() - tick - 0.005)

        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        response = await _get(app, "/fhir/Observation/o1")
        answered = time.perf_counter() - started
        done.set()
        await ticking
        return response, worst, answered

    response, worst_lag, answered = asyncio.run(scenario())
    holder.join(5)
    assert response.status_code == 200
    assert answered >= hold * 0.8  # it waited for the writer (its audit could not be appended before) ...
    assert worst_lag < 0.2  # ... on a worker thread: the loop kept running
    assert hand_offs == ["run_deferred"]
    assert len(_events_about(services, "pa")) > len(before)


def test_a_request_served_on_the_loop_reads_on_the_loops_never_waiting_connection(gateway) -> None:  # type: ignore[no-untyped-def]
    from gateway.fhir.context import RequestScope

    services = gateway[0]
    never_waiting = SingleStatements.of(services.store.engine, waiting=False).connection()
    with RequestScope(services, on_event_loop=True).reading(snapshot=False) as connection:
        assert connection.connection.dbapi_connection is never_waiting.connection.dbapi_connection
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    with RequestScope(services).reading(snapshot=False) as connection:  # a worker thread's may wait
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
