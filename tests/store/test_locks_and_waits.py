"""Waiting for other writers: the cross-transaction lock of an ingestion on PostgreSQL (`exclusive`, one session
per thread) and SQLite's BEGIN IMMEDIATE in short steps (`begin_immediate`), both bounded by the timeout."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from gateway.store.engine import SingleStatements, create_database_engine
from gateway.store.locks import exclusive
from tests.pg import fresh_database


def _holds_for(engine: Engine, name: str, seconds: float, started: threading.Event) -> None:
    with exclusive(engine, name):
        started.set()
        time.sleep(seconds)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_exclusive_makes_the_second_holder_wait(backend: str, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'l.db'}" if backend == "sqlite" else fresh_database(
        request.getfixturevalue("pg_url"), "locks")
    engine = create_database_engine(url)
    started = threading.Event()
    holder = threading.Thread(target=_holds_for, args=(engine, "ingest|x", 0.4, started))
    holder.start()
    started.wait(5)
    begun = time.monotonic()
    with exclusive(engine, "ingest|x"):
        waited = time.monotonic() - begun
    with exclusive(engine, "ingest|other"):  # another name: no wait
        pass
    holder.join()
    assert waited > 0.25
    engine.dispose()


def test_exclusive_on_postgres_is_released_when_the_body_fails_and_nests(pg_url: str) -> None:
    engine = create_database_engine(fresh_database(pg_url, "locks"))
    with pytest.raises(RuntimeError):
        with exclusive(engine, "outer"):
            with exclusive(engine, "inner"):  # nested on this thread's session, each under its own key
                raise RuntimeError("the ingestion failed")
    with engine.connect() as connection:  # another session sees both free
        free = connection.execute(text("SELECT pg_try_advisory_lock(k) FROM (VALUES (:a), (:b)) AS v(k)"),
                                  {"a": _key("outer"), "b": _key("inner")}).scalars().all()
    assert free == [True, True]
    engine.dispose()


def _key(name: str) -> int:
    from gateway.store.locks import lock_key
    return lock_key(name)


def test_begin_immediate_waits_in_short_steps_and_gives_up_at_the_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_database_engine(f"sqlite:///{tmp_path / 'w.db'}", timeout=0.6)
    writes = SingleStatements(engine)
    with writes.write() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    holder = engine.connect().execution_options(write=True)
    holder.begin()
    holder.exec_driver_sql("INSERT INTO t VALUES (1)")
    begun = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        with writes.write() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert 0.5 < time.monotonic() - begun < 1.0  # the busy timeout, once (not the busy handler on top of it)

    threading.Timer(0.2, holder.commit).start()  # released while the next one waits: it goes on at once
    begun = time.monotonic()
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        connection.exec_driver_sql("INSERT INTO t VALUES (3)")
    assert time.monotonic() - begun < 0.4
    with writes() as connection:
        assert connection.exec_driver_sql("SELECT x FROM t ORDER BY x").scalars().all() == [1, 3]
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 600  # restored after the wait
    holder.close()
    engine.dispose()


def test_the_event_loops_connections_never_wait_and_never_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_database_engine(f"sqlite:///{tmp_path / 'n.db'}", timeout=5)
    never_waiting = SingleStatements.of(engine, waiting=False)
    assert never_waiting is SingleStatements.of(engine, waiting=False)
    assert never_waiting is not SingleStatements.of(engine)
    with SingleStatements.of(engine).write() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with never_waiting() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    holder = engine.connect().execution_options(write=True)
    holder.begin()
    holder.exec_driver_sql("INSERT INTO t VALUES (1)")
    with never_waiting() as connection:  # WAL: a reader is not held up by the writer
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    begun = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        with never_waiting.write() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
    assert time.monotonic() - begun < 0.5  # at once, not after the 5 s busy timeout
    holder.commit()
    holder.close()
    with SingleStatements.of(engine)() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000  # the waiting ones: unchanged
    never_waiting.discard()  # replaced at its next use, configured alike
    with never_waiting() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 0
    engine.dispose()


def test_in_memory_there_is_one_connection_to_wait_on() -> None:
    engine = create_database_engine("sqlite://")
    assert SingleStatements.of(engine, waiting=False) is SingleStatements.of(engine)
    engine.dispose()


def test_a_never_waiting_connection_is_not_handed_back_to_the_pool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Its busy timeout of 0 must not reach another thread: when its thread ends, it is closed, not pooled."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'p.db'}", timeout=5)
    drivers = []

    def loop_thread() -> None:
        with SingleStatements.of(engine, waiting=False)() as connection:
            drivers.append(connection.connection.dbapi_connection)

    worker = threading.Thread(target=loop_thread)
    worker.start()
    worker.join()
    import gc

    gc.collect()
    for _ in range(3):  # whatever the pool hands out now waits as configured
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is not drivers[0]
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    engine.dispose()
