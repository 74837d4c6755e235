"""Serialise writers across processes where a row lock cannot: when the row does not exist yet.

Two decisions are a read followed by a write — "create unless a match exists" (conditional create/update/
delete, conditional references in transactions) and "create this id unless it exists" (update-as-create, e.g.
ingestion's stable ids). Two gateway instances running either at once would both see nothing and both create
(a duplicate, or a unique-key violation). On PostgreSQL a transaction-scoped advisory lock keyed on the
condition or the id makes the second writer wait until the first has committed; its next statement (READ
COMMITTED) then sees the row. SQLite needs nothing: a write transaction holds the database lock from BEGIN."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text


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
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold `name` across several transactions (e.g. one ingestion: dedup check, write, record update).

    PostgreSQL: a session advisory lock on a connection of its own (released on exit, or by the server when
    the process dies). SQLite: a lock in this process — an embedded database serves one host, and its writers
    are serialised anyway; only the check-then-write window between transactions needs closing."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = {"key": lock_key(name)}
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()
        return
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    with lock:
        yield
