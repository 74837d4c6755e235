"""One ingestion of a given message at a time, across threads and processes: the dedup check ("was this already
accepted?"), the write and the record update are separate transactions, so two ingestions of the same bytes (or
of the same message id) must not overlap or both would be accepted; and two messages about one patient must not
overlap either, or the second could miss the first's patient when it checks the stored demographics. An ingestion
holds the locks of its bytes, of its message id and of its patient (`message_locks`) from the dedup check until
its record is final.

PostgreSQL: a session advisory lock (`gateway.store.locks.exclusive`), which also spans gateway instances.
SQLite file database: a POSIX record lock on one byte of a lock file next to the database, chosen by the name's
hash, so that `zcc-gateway ingest --jobs N` worker processes exclude each other too (an embedded database serves
one host). Record locks belong to a process, not a thread, so threads of one process first take an in-process lock
on the same byte; two names sharing a byte (1 in 2^20) only wait for each other. In-memory SQLite: the in-process
lock alone (no other process can open that database)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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


SHARED_SPACE = 2  # after the message's own names (bytes: space 0, message id: space 1)


@contextmanager
def message_locks(engine: Engine, names: Sequence[str], shared: Sequence[str] = ()) -> Iterator[None]:
    """Hold every one of `names`, the message's own keys, in the order given (every caller gives the message's
    bytes first, then its message id; name `i` in space `i` of a SQLite lock file), then every one of `shared`,
    keys that other messages hold too (the patient a message is about), all in one space and in one global order.
    Every ingestion takes its locks in the order (space, key), so two ingestions never wait for each other in a
    circle. PostgreSQL: all in one round trip (and released in one)."""
    if lock_file(engine) is None:
        with exclusive(engine, *names, *sorted(set(shared), key=lock_key)):
            yield
        return
    slots = sorted({lock_key(name) % SLOTS: name for name in shared}.items())  # one byte may serve two names
    with ExitStack() as held:
        for space, name in enumerate(names):
            held.enter_context(message_lock(engine, name, space))
        for _, name in slots:
            held.enter_context(message_lock(engine, name, SHARED_SPACE))
        yield
