"""Rest-hook notifications through a transactional outbox: at-least-once, across instances and crashes.

In the transaction that writes a capacity change, `OutboxStage` matches the written resources against the
active rest-hook Subscriptions (on the same connection, so it sees exactly what is being committed) and
inserts one `capacity_outbox` row per (Subscription, changed resource version). The rows commit or roll back
with the change: a committed change always has its pending deliveries, a failed write has none.

A delivery worker in every process (`OutboxWorker`) claims pending rows — PostgreSQL: `SELECT … FOR UPDATE SKIP
LOCKED` and a lease (`claimed_by`, `lease_until`, on the database server's clock); SQLite: the same statements
in one BEGIN IMMEDIATE transaction, one process — POSTs one notification per (Subscription, write transaction)
with the existing retry and back-off, and marks the rows `delivered` or `given-up` (with the reason, logged and
kept). The writing process wakes its own worker right after the commit, so it normally delivers; the other
processes poll every `ZCC_OUTBOX_POLL` seconds and take over rows nobody claimed (the writer died after the
commit) or whose lease expired (the claimant died while delivering). A notification can therefore arrive
twice — after a crash between the receiver's answer and the `delivered` mark — but is never lost: each carries
the changed versions (`entry.fullUrl` + `meta.versionId`), so a receiver can drop a repeat.

Settings (environment): `ZCC_OUTBOX_LEASE` (seconds, default 60; renewed every third of it while the claimant
works a batch off, so it lapses only when the claimant died), `ZCC_OUTBOX_POLL` (default 1 s),
`ZCC_OUTBOX_RETENTION` (seconds a delivered row is kept for inspection, default 3600; given-up rows 7 days)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, insert, or_, select, text, update

from gateway.capacity.outbox_schema import capacity_outbox
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.store.availability import unavailable_reason

if TYPE_CHECKING:
    from gateway.capacity.hub import SubscriptionHub

log = logging.getLogger("gateway.capacity.outbox")

PENDING, DELIVERED, GIVEN_UP = "pending", "delivered", "given-up"
CLAIM_LIMIT = 200
GIVEN_UP_RETENTION = 7 * 24 * 3600.0
PRUNE_EVERY = 60.0
OUTAGE_PAUSE_MAX = 30.0  # seconds between attempts while the database stays unavailable
_WATCHED_WRITES = frozenset({kinds.CREATE, kinds.UPDATE})
_COLLECTING = "capacity.outbox"


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def database_now(connection: Connection) -> float:
    """Epoch seconds on the database server's clock (PostgreSQL), so leases of instances on different hosts
    compare on one clock; SQLite serves one host."""
    if connection.dialect.name == "postgresql":
        return float(connection.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
    return time.time()


@dataclass
class _Transaction:
    """The watched writes of one write transaction (a single write, or every entry of a transaction Bundle)."""

    connection: Connection
    batch: str = field(default_factory=lambda: str(uuid.uuid4()))
    changes: list[tuple[str, str, int]] = field(default_factory=list)


class OutboxStage:
    """Innermost pipeline stage: inside the write transaction, turn the capacity writes into outbox rows."""

    def __init__(self, hub: SubscriptionHub) -> None:
        self.hub = hub

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        watched = it.kind in _WATCHED_WRITES and it.resource_type in self.hub.watched
        if not watched and it.kind != kinds.TRANSACTION:
            return next_handler(scope, it)
        collecting: _Transaction | None = scope.state.get(_COLLECTING)
        if collecting is not None and scope.connection is collecting.connection:  # an entry of a transaction
            result = next_handler(scope, it)
            _collect(collecting, it, result)
            return result
        with scope.writing() as connection:  # the audit stage's transaction, or one of our own
            collected = _Transaction(connection)
            scope.state[_COLLECTING] = collected
            try:
                inner = scope if scope.connection is connection else scope.child(connection)
                result = next_handler(inner, it)
                if watched:
                    _collect(collected, it, result)
                self.hub.enqueue_rest_hooks(connection, collected.batch, collected.changes)
            finally:
                if scope.state.get(_COLLECTING) is collected:
                    scope.state.pop(_COLLECTING, None)
                if collecting is not None:
                    scope.state[_COLLECTING] = collecting
        return result


def _collect(collected: _Transaction, it: Interaction, result: Result) -> None:
    """(type, id, version) of what this write stored; nothing for a conditional create that matched."""
    if it.kind == kinds.CREATE and result.status != 201:
        return
    if result.stored is not None:
        collected.changes.append((result.stored.type, result.stored.id, result.stored.version))
        return
    location = result.headers.get("Content-Location") or result.headers.get("Location") or ""
    path, _, version = location.partition("/_history/")
    parts = path.rstrip("/").split("/")
    if version.isdigit() and len(parts) >= 2 and it.resource_type:
        collected.changes.append((it.resource_type, parts[-1], int(version)))


def insert_rows(connection: Connection, batch: str, rows: list[tuple[str, str, str, int]]) -> None:
    """(subscription id, type, id, version) rows, pending, in the caller's transaction."""
    if not rows:
        return
    now = database_now(connection)
    connection.execute(insert(capacity_outbox), [
        {"batch": batch, "subscription_id": subscription_id, "resource_type": resource_type,
         "resource_id": resource_id, "version": version, "created_at": now, "state": PENDING, "claims": 0}
        for subscription_id, resource_type, resource_id, version in rows])


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    batch: str
    subscription_id: str
    resource_type: str
    resource_id: str
    version: int
    created_at: float
    claims: int


Deliver = Callable[[str, list[ClaimedRow]], tuple[str, str | None]]  # -> (state, error)


class OutboxWorker:
    """The delivery thread of one process. `deliver(subscription_id, rows)` POSTs one notification (with its
    retries) and says `delivered` or `given-up` (+ reason)."""

    def __init__(self, store: Any, deliver: Deliver) -> None:
        self.store, self.deliver = store, deliver
        self.lease = _env_seconds("ZCC_OUTBOX_LEASE", 60.0)
        self.poll = _env_seconds("ZCC_OUTBOX_POLL", 1.0)
        self.retention = _env_seconds("ZCC_OUTBOX_RETENTION", 3600.0)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="capacity-outbox", daemon=True)
            self._thread.start()
        self.wake()  # rows left by a crashed or stopped process: at once, not after the first poll

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        pause = self.poll  # grows while the database is unavailable: an outage is not hammered nor logged every poll
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.work_once():
                    pass
                self._prune()
                pause = self.poll
            except Exception as error:  # noqa: BLE001 - the worker must survive a database outage; it retries
                reason = unavailable_reason(error)
                if reason is None:
                    log.exception("capacity outbox pass failed")
                elif pause == self.poll:  # once per outage, not once per retry
                    log.warning("capacity outbox paused: %s; retrying with back-off", reason)
                self._stop.wait(pause)
                pause = min(pause * 2, OUTAGE_PAUSE_MAX) if reason else self.poll

    def work_once(self) -> bool:
        """Claim a batch of deliverable rows and deliver them; False when there was nothing to claim."""
        claimed = self.claim()
        if not claimed:
            return False
        groups: dict[tuple[str, str], list[ClaimedRow]] = {}
        for row in claimed:
            groups.setdefault((row.subscription_id, row.batch), []).append(row)
        remaining = [row.id for row in claimed]
        with self._lease_kept(remaining):
            for (subscription_id, _), rows in groups.items():
                if self._stop.is_set():
                    self._release(remaining)
                    return False
                state, error = self.deliver(subscription_id, rows)
                self._finish([row.id for row in rows], state, error)
                done = {row.id for row in rows}
                remaining = [row_id for row_id in remaining if row_id not in done]
        return True

    @contextmanager
    def _lease_kept(self, ids: list[int]) -> Iterator[None]:
        """Renew the claim every third of the lease while this process works it off, however long one delivery
        takes (a slow receiver: 3 attempts x 5 s + back-off): only the rows of a claimant that died are taken
        over, never those of one that is still delivering (which would POST the same notification twice)."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease / 3):
                try:
                    self._renew(ids)
                except Exception as error:  # noqa: BLE001 - a failed renewal only risks a repeat delivery
                    log.warning("capacity outbox lease not renewed: %s", unavailable_reason(error) or error)

        renewer = threading.Thread(target=renew, name="capacity-outbox-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(timeout=5)

    def claim(self) -> list[ClaimedRow]:
        table = capacity_outbox
        with self.store.write() as connection:
            now = database_now(connection)
            ids = list(connection.execute(
                select(table.c.id)
                .where(table.c.state == PENDING, or_(table.c.lease_until.is_(None), table.c.lease_until < now))
                .order_by(table.c.id).limit(CLAIM_LIMIT)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite: the write transaction holds the lock
            ).scalars())
            if not ids:
                return []
            connection.execute(update(table).where(table.c.id.in_(ids)).values(
                claimed_by=self.name, lease_until=now + self.lease, claims=table.c.claims + 1))
            rows = connection.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id)).all()
        return [ClaimedRow(r.id, r.batch, r.subscription_id, r.resource_type, r.resource_id, r.version,
                           r.created_at, r.claims) for r in rows]

    def _renew(self, ids: list[int]) -> None:
        table = capacity_outbox
        with self.store.write() as connection:
            now = database_now(connection)
            connection.execute(update(table).where(table.c.id.in_(ids), table.c.claimed_by == self.name,
                                                   table.c.state == PENDING).values(lease_until=now + self.lease))

    def _release(self, ids: list[int]) -> None:
        """Stopping (orderly shutdown): hand the rest back at once rather than after the lease."""
        if not ids:
            return
        table = capacity_outbox
        with self.store.write() as connection:
            connection.execute(update(table).where(table.c.id.in_(ids), table.c.claimed_by == self.name,
                                                   table.c.state == PENDING).values(lease_until=None))

    def _finish(self, ids: list[int], state: str, error: str | None) -> None:
        table = capacity_outbox
        with self.store.write() as connection:
            now = database_now(connection)
            connection.execute(update(table).where(table.c.id.in_(ids), table.c.state == PENDING).values(
                state=state, done_at=now, last_error=error, lease_until=None))

    def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        table = capacity_outbox
        with self.store.write() as connection:
            now = database_now(connection)
            connection.execute(delete(table).where(or_(
                (table.c.state == DELIVERED) & (table.c.done_at < now - self.retention),
                (table.c.state == GIVEN_UP) & (table.c.done_at < now - GIVEN_UP_RETENTION))))

    def pending(self) -> int:
        """Rows not yet delivered or given up (by any process)."""
        with self.store.engine.connect() as connection:
            query = select(func.count()).select_from(capacity_outbox).where(capacity_outbox.c.state == PENDING)
            return int(connection.execute(query).scalar_one())
