"""Database engines: one code path for embedded SQLite (WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


DEFAULT_TIMEOUT = 30.0


def create_database_engine(url: str, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """`timeout` bounds every wait on the database, in seconds: SQLite's busy wait for another writer's lock;
    PostgreSQL's connect, row-lock waits and pool checkout. Past it the request fails (503), it does not hang."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})
        _configure_sqlite(engine, timeout)
        return engine
    # plan_cache_mode=force_custom_plan: psycopg prepares a statement after 5 executions, and PostgreSQL may then
    # switch to a generic plan that ignores the parameter values. A search's best plan depends on them (walk in
    # key order and stop at _count for a common value, look up the few rows of a rare one): measured on 1M Slots,
    # a generic plan took 35-42 s where the custom one takes milliseconds. Statements stay prepared (no re-parse).
    options = f"-c lock_timeout={int(timeout * 1000)} -c plan_cache_mode=force_custom_plan"
    connect_args = {"connect_timeout": max(1, round(timeout)), "options": options}
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True, pool_timeout=timeout,
                         connect_args=connect_args)


def _configure_sqlite(engine: Engine, timeout: float = DEFAULT_TIMEOUT) -> None:
    """WAL for concurrent readers; we issue BEGIN ourselves so writers take the lock up front
    (BEGIN IMMEDIATE) instead of failing on a read->write upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        options = connection.get_execution_options()
        if options.get("single_statement"):
            return  # autocommit reader: the statement is its own transaction
        if options.get("write"):
            begin_immediate(connection.connection.dbapi_connection,
                            lambda: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        else:
            connection.exec_driver_sql("BEGIN DEFERRED")


_FIRST_WAIT, _LONGEST_WAIT = 0.0002, 0.002


def begin_immediate(dbapi_connection: Any, last_try: Callable[[], Any]) -> None:
    """BEGIN IMMEDIATE on a SQLite driver connection, waiting up to its busy timeout for the writer that holds
    the database, in steps of at most 2 ms. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms between
    tries, so a writer waiting for one that held the lock ~10 ms slept ~18 ms: with two ingestion processes the
    database sat idle a good part of the time. When the time is up (or on any other error) `last_try` begins
    instead, still without a busy wait, and raises as SQLAlchemy does ("database is locked": 503)."""
    busy_timeout = dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0]
    deadline = time.monotonic() + busy_timeout / 1000
    wait = _FIRST_WAIT
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if getattr(error, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF != sqlite3.SQLITE_BUSY:
                    break  # not another writer (the extended codes of SQLITE_BUSY included)
            if time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
            wait = min(2 * wait, _LONGEST_WAIT)
        last_try()
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout)}")


def sqlite_file(engine: Engine) -> bool:
    """A SQLite database on disk: each thread may keep connections of its own to it (in memory, the pool's one
    connection is the database)."""
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


class _Statements:
    """`with SingleStatements()`: a class, not a generator (a point read costs little more than this)."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def __enter__(self) -> Connection:
        return self.connection

    def __exit__(self, *_: object) -> None:
        connection = self.connection
        if connection.in_transaction() and not connection.invalidated:
            try:
                connection.rollback()  # SQLAlchemy's bookkeeping only: the database saw no transaction
            except Exception:  # noqa: BLE001 - a connection broken meanwhile: replaced at the next use
                connection.invalidate()


_SINGLE_STATEMENTS = "_zcc_single_statements"
_NEVER_WAITING = "_zcc_single_statements_never_waiting"
_CREATING = threading.Lock()


class SingleStatements:
    """One autocommit connection per thread on `engine`, for statements that are each their own transaction (a
    point read, a record insert or update, a session advisory lock). A pool checkout costs a pre-ping round trip,
    and a transaction a BEGIN and a COMMIT: three round trips around one statement on PostgreSQL. SQLite: the
    driver connection is autocommit already (`_configure_sqlite`) and no BEGIN is issued for it; writes go through
    `write()`. A connection that a database error invalidated is replaced at the next use."""

    def __init__(self, engine: Engine, waiting: bool = True) -> None:
        self.engine = engine
        self.waiting = waiting
        self._local = threading.local()

    @classmethod
    def of(cls, engine: Engine, waiting: bool = True) -> SingleStatements:
        """The engine's one instance, kept on the engine: every user on a thread (the store's single-statement
        reads, the ingestion records, the cross-transaction locks) shares that thread's connection, so a thread
        pins one pooled connection for them, not one per user.

        `waiting=False`, for the server's event loop, which must never wait: on a SQLite file, connections that
        never wait for another connection's lock (busy timeout 0: SQLITE_BUSY at once, answered as 503) and never
        checkpoint the write-ahead log on commit (a checkpoint fsyncs; gateway.audit.log checkpoints elsewhere).
        The audit of a read served on the loop is appended on the same connection as its reads
        (`AuditLog.append_now`), so that its commit leaves their page cache warm: SQLite drops a connection's
        cache after any other connection's commit. Elsewhere (PostgreSQL, SQLite in memory) the waiting one."""
        waiting = waiting or not sqlite_file(engine)
        attribute = _SINGLE_STATEMENTS if waiting else _NEVER_WAITING
        found: SingleStatements | None = engine.__dict__.get(attribute)
        if found is None:
            with _CREATING:
                found = engine.__dict__.setdefault(attribute, cls(engine, waiting))
        return found

    def connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            autocommit = {} if self.engine.dialect.name == "sqlite" else {"isolation_level": "AUTOCOMMIT"}
            connection = self.engine.connect().execution_options(single_statement=True, **autocommit)
            if not self.waiting:  # configured for this thread only: never handed back to the pool
                connection.detach()
                driver = connection.connection.dbapi_connection
                driver.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
                driver.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
            self._local.connection = connection
        return connection

    def discard(self) -> None:
        """Replace this thread's connection at its next use (after an error that may have left it in any state)."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is not None and not connection.invalidated:
            connection.invalidate()

    def __call__(self) -> _Statements:
        """This thread's connection, for `with`: the statements made in it are each their own transaction."""
        return _Statements(self.connection())

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write statement (or a few), committed on exit. PostgreSQL: autocommit, as above. SQLite: in a BEGIN
        IMMEDIATE transaction of its own, so that the wait for another writer is `begin_immediate`'s short steps
        rather than the busy handler's (an autocommit write waits in the busy handler)."""
        if self.engine.dialect.name != "sqlite":
            with self() as connection:
                yield connection
            return
        with self() as connection:
            driver = connection.connection.dbapi_connection
            begin_immediate(driver, lambda: connection.exec_driver_sql("BEGIN IMMEDIATE"))
            try:
                yield connection
            except BaseException:
                driver.rollback()
                raise
            driver.commit()
