"""One ingestion of a given message at a time, across threads and processes: the dedup check ("was this already
accepted?"), the write and the record update are separate transactions, so two ingestions of the same bytes must
not overlap or both would be accepted.

PostgreSQL: a session advisory lock (`gateway.store.locks.exclusive`), which also spans gateway instances.
SQLite file database: a POSIX record lock on one byte of a lock file next to the database, chosen by the name's
hash, so that `zcc-gateway ingest --jobs N` worker processes exclude each other too (an embedded database serves
one host). Record locks belong to a process, not a thread, so threads of one process first take an in-process lock
on the same byte; two names sharing a byte (1 in 2^20) only wait for each other. In-memory SQLite: the in-process
lock alone (no other process can open that database)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from gateway.store.locks import exclusive, lock_key

SLOTS = 1 << 20


def lock_file(engine: Engine) -> Path | None:
    """The lock file of a SQLite file database; None for PostgreSQL and in-memory SQLite."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database + "-ingest-lock")


@contextmanager
def message_lock(engine: Engine, name: str, space: int = 0) -> Iterator[None]:
    """Hold `name`. Locks nested in one ingestion use different `space`s (the bytes first, then the message id),
    so that an inner lock can never fall on the byte the outer one holds."""
    path = lock_file(engine)
    if path is None:
        with exclusive(engine, name):
            yield
        return
    slot = space * SLOTS + lock_key(name) % SLOTS
    with exclusive(engine, f"{path}|{slot}"):  # threads of this process: one per byte
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX, 1, slot)  # other processes: released on close or exit
            yield
        finally:
            os.close(descriptor)
