"""Serialise writers across processes where a row lock cannot: when the row does not exist yet.

Two decisions are a read followed by a write — "create unless a match exists" (conditional create/update/
delete, conditional references in transactions) and "delete this id unless it is absent". Two gateway instances
running either at once would both see nothing and both act (e.g. a duplicate). On PostgreSQL a
transaction-scoped advisory lock keyed on the condition or the id makes the second writer wait until the first
has committed; its next statement (READ COMMITTED) then sees the row. ("Create this id unless it exists", the
update-as-create of e.g. ingestion's stable ids, needs no lock: `ResourceStore.save` inserts with ON CONFLICT DO
NOTHING, which waits for a concurrent creator on the unique key.) SQLite needs nothing: a write transaction holds
the database lock from BEGIN."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from gateway.store.engine import SingleStatements


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock id for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def advisory_write_lock(connection: Connection, name: str) -> bool:
    """Hold `name` until the write transaction ends; False (and nothing done) where no lock is needed."""
    if connection.dialect.name != "postgresql" or not connection.get_execution_options().get("write"):
        return False
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
    return True


def lock_condition(connection: Connection, resource_type: str, params: list[tuple[str, str]]) -> None:
    """Conditional writes on the same condition (parameter order does not matter) run one after another."""
    advisory_write_lock(connection, resource_type + "?" + "&".join(f"{n}={v}" for n, v in sorted(params)))


_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@contextmanager
def exclusive(engine: Engine, *names: str) -> Iterator[None]:
    """Hold every one of `names` across several transactions (e.g. one ingestion: dedup check, write, record
    update), taken in the order given (callers that share names give them in one order, so they cannot deadlock).

    PostgreSQL: session advisory locks on this thread's autocommit connection (`SingleStatements.of`, shared with
    the single statements the thread runs meanwhile: autocommit, they leave the locks alone), released on exit, or
    by the server when the process dies; locks nested on one thread are taken on the same session, each under its
    own key. One round trip takes them all and one releases them; a pooled connection
    per lock cost a checkout with pre-ping and a BEGIN/COMMIT around both. SQLite: locks in this process — an
    embedded database serves one host, and its writers are serialised anyway; only the check-then-write window
    between transactions needs closing."""
    if engine.dialect.name == "postgresql":
        session = SingleStatements.of(engine)
        keys = [lock_key(name) for name in names]
        with session() as connection:
            connection.exec_driver_sql(_advisory("lock", len(keys)), tuple(keys))
            try:
                yield
            except BaseException:
                _unlock(connection, keys, quiet=True)
                raise
            _unlock(connection, keys, quiet=False)
        return
    with ExitStack() as held:
        for name in names:
            with _local_guard:
                lock = _local_locks.setdefault(name, threading.Lock())
            held.enter_context(lock)
        yield


def _advisory(function: str, count: int) -> str:
    """`SELECT pg_advisory_lock(%s), pg_advisory_lock(%s), ...` (left to right)."""
    return "SELECT " + ", ".join([f"pg_advisory_{function}(%s)"] * count)


def _unlock(connection: Connection, keys: list[int], quiet: bool) -> None:
    try:
        connection.exec_driver_sql(_advisory("unlock", len(keys)), tuple(keys))
    except DBAPIError:
        connection.invalidate()  # the session is unusable: closing it ends it, which releases whatever it held
        if not quiet:
            raise
