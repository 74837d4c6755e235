"""AuditLog: append AuditEvents to the chain on a given Connection (so they commit or roll back with the data
access they record), keep the break-the-glass review queue, write signed checkpoints and verify the chain.

Appends are serialised through the single `audit_chain_head` row: it is read FOR UPDATE (PostgreSQL) or under
the write transaction's lock (SQLite, BEGIN IMMEDIATE) and updated in the same transaction as the event. So
several gateway instances on one PostgreSQL database share one chain: appends queue on that row lock, `seq`
order equals chain order, and a rolled-back transaction leaves no link behind (only a gap in `seq`).
The row is created on first use with INSERT ... ON CONFLICT DO NOTHING, so two instances starting on an empty
database do not race.

An append is four statements whatever the number of events (read + lock the head with the next `seq` values;
one executemany of the events; one of their patients; move the head), run on the DB-API cursor of the
connection with SQL text written once (the driver caches the prepared statement): through SQLAlchemy's
execution machinery the same append cost ~4x more. Appends that do not join a data transaction (reads,
searches, refusals) run in a write transaction of their own on a long-lived per-thread writer connection
(SQLite; on PostgreSQL a pooled connection per append, so the server's connection limit stays the pool's), and
concurrent ones share it (group commit, `gateway.audit.group_commit`): one lock of the head and one commit for
every request that arrived while the previous append was being written, each still answered only after its own
events are committed. A read served on the event loop appends on the loop's never-waiting connection, the one
its reads were made on (`append_now`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import DBAPIError

from gateway.audit.chain import GENESIS, BrokenLink, ChainRow, Verification, link_hash, verify_chain
from gateway.audit.checkpoints import Checkpoint, SignatureCheck, Signer, checkpoint_problem, make_checkpoint
from gateway.audit.group_commit import GroupCommit
from gateway.audit.jcs import canonicalize, canonicalize_built
from gateway.audit.schema import (
    audit_chain_head,
    audit_checkpoint,
    audit_event,
    audit_event_patient,
    audit_review,
)
from gateway.store.engine import SingleStatements, sqlite_file

log = logging.getLogger("gateway.audit")
_HEAD_ID = 1
_HEAD = select(audit_chain_head).where(audit_chain_head.c.id == _HEAD_ID)
_LOCK_HEAD = _HEAD.with_for_update()


@dataclass(frozen=True)
class _Sql:
    """The append statements in one dialect's DB-API parameter style."""

    head: str  # last_seq, last_hash, count, highest seq in use (SQLite) / nothing (PostgreSQL: a sequence)
    next_seqs: str | None  # PostgreSQL: n values of the seq column's sequence
    create_head: str
    insert_event: str
    insert_patient: str
    move_head: str
    insert_review: str
    insert_checkpoint: str


def _sql(mark: str, postgresql: bool) -> _Sql:
    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    return _Sql(
        head=(
            "SELECT last_seq, last_hash, count, NULL FROM audit_chain_head WHERE id = 1 FOR UPDATE"
            if postgresql
            else "SELECT h.last_seq, h.last_hash, h.count, (SELECT max(seq) FROM audit_event) "
            "FROM audit_chain_head h WHERE h.id = 1"
        ),
        next_seqs=(
            f"SELECT nextval(pg_get_serial_sequence('audit_event', 'seq')) FROM generate_series(1, {mark})"
            if postgresql
            else None
        ),
        create_head="INSERT INTO audit_chain_head (id, last_seq, last_hash, count) "
        f"VALUES (1, 0, '{GENESIS}', 0) ON CONFLICT (id) DO NOTHING",
        insert_event="INSERT INTO audit_event (seq, event_id, recorded, kind, outcome, client_id, body, prev_hash, "
        f"hash) VALUES ({marks(9)})",
        insert_patient=f"INSERT INTO audit_event_patient (seq, patient) VALUES ({marks(2)})",
        move_head=f"UPDATE audit_chain_head SET last_seq = {mark}, last_hash = {mark}, count = {mark} WHERE id = 1",
        insert_review="INSERT INTO audit_review (event_id, patient, client_id, user_id, reason, opened, expires, "
        f"status) VALUES ({marks(7)}, 'open')",
        insert_checkpoint="INSERT INTO audit_checkpoint (upto_seq, count, hash, recorded, key_id, payload, "
        f"signature) VALUES ({marks(7)})",
    )


_SQLITE = _sql("?", postgresql=False)
_POSTGRESQL = _sql("%s", postgresql=True)


WAL_CHECKPOINT_EVERY = 150  # appends on the event loop's connection between two checkpoints of SQLite's log


class AuditWriteError(RuntimeError):
    """The audit record could not be written: the caller must not answer with data (fail closed)."""


class Appended(NamedTuple):
    seq: int
    event_id: str
    hash: str


@dataclass(frozen=True)
class ReviewItem:
    event_id: str
    patient: str
    client_id: str | None
    user_id: str | None
    reason: str
    opened: str
    expires: str


class Pending(NamedTuple):
    """An event to append: its BALP kind, the patients it is about, the client, an optional UTC sort key."""

    event: dict[str, Any]
    kind: str
    patients: tuple[str, ...] = ()
    client_id: str | None = None
    recorded: str | None = None
    built: bool = False  # made by gateway.audit.events (JCS-safe by construction: no plain-value walk needed)


@dataclass(frozen=True)
class CheckpointRule:
    """Sign a checkpoint of the chain head every `every` events, in the appending transaction."""

    sign: Signer
    key_id: str
    every: int


@dataclass(frozen=True)
class AuditPage:
    total: int
    events: list[dict[str, Any]]


class AuditLog:
    def __init__(self, checkpoints: CheckpointRule | None = None) -> None:
        self.checkpoint_rule = checkpoints
        self._writers = threading.local()  # this thread's SQLite writer connection per engine (see `_writer`)
        self._groups: weakref.WeakKeyDictionary[Engine, GroupCommit[_Batched, list[Appended]]] = (
            weakref.WeakKeyDictionary()
        )
        self._groups_lock = threading.Lock()
        self._unchecked: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()  # see append_now

    def append(
        self,
        connection: Connection,
        event: dict[str, Any],
        kind: str,
        patients: Iterable[str] = (),
        client_id: str | None = None,
        recorded: str | None = None,
    ) -> Appended:
        """Append on the caller's transaction; `recorded` is the UTC sort key when `event.recorded` is not
        already one (events handed in by administrative clients)."""
        return self.append_all(connection, [Pending(event, kind, tuple(patients), client_id, recorded)])[0]

    def append_all(
        self, target: Connection | Engine, pending: Sequence[Pending], reviews: Sequence[ReviewItem] = ()
    ) -> list[Appended]:
        """Append several events (one interaction's) under one lock of the head and one update of it, plus the
        break-the-glass review items they open. On a Connection: in the caller's transaction (it commits or
        rolls back with the data). On an Engine: in a write transaction of its own, committed before this
        returns. Any failure is an AuditWriteError (the caller must not answer with data)."""
        with _FailingClosed(target.dialect):
            batched = _Batched(tuple(_canonical(item) for item in pending), tuple(reviews))
            if isinstance(target, Engine):
                return self._group(target).submit(batched)
            cursor = target.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                return self._append_rows(cursor, target.dialect.name == "postgresql", batched.pending,
                                         batched.reviews)
            finally:
                cursor.close()

    def append_now(self, engine: Engine, pending: Sequence[Pending], reviews: Sequence[ReviewItem] = ()) -> bool:
        """`append_all(engine, ...)` for a caller that must never wait (the event loop): True once the events are
        committed; False, having written nothing, when that would mean waiting: another writer holds the SQLite
        database, another thread of this process is appending, a read is still open on the loop's connection, or
        the database is not a SQLite file (PostgreSQL commits over the network). Failures other than waiting are
        an AuditWriteError, as for `append_all`."""
        if not sqlite_file(engine):
            return False
        with _FailingClosed(engine.dialect):
            batched = _Batched(tuple(_canonical(item) for item in pending), tuple(reviews))
            ran, appended = self._group(engine).run_if_idle(
                lambda: self._append_alone(engine, batched.pending, batched.reviews, wait=False)
            )
        if not ran or appended is None:
            return False
        self._unchecked[engine] = self._unchecked.get(engine, 0) + 1
        return True

    def wal_checkpoint_due(self, engine: Engine) -> bool:
        """The connection `append_now` writes on never checkpoints SQLite's write-ahead log itself (a checkpoint
        fsyncs the database: ~5 ms the event loop would stand still, every ~150 appends): True, once per
        `WAL_CHECKPOINT_EVERY` of its appends, when a `checkpoint_wal` is due on a thread that may wait."""
        if self._unchecked.get(engine, 0) < WAL_CHECKPOINT_EVERY:
            return False
        self._unchecked[engine] = 0
        return True

    def checkpoint_wal(self, engine: Engine) -> None:
        """Copy the write-ahead log into the database as far as no reader needs it (PASSIVE: waits for no one).
        The events are committed already: a failure is logged, not raised (the next checkpoint retries)."""
        try:
            self._writer(engine).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as problem:  # noqa: BLE001 - see above
            self._drop_writer(engine)
            log.warning("audit: checkpoint of the SQLite write-ahead log failed (%s)", type(problem).__name__)

    def _group(self, engine: Engine) -> GroupCommit[_Batched, list[Appended]]:
        group = self._groups.get(engine)
        if group is None:
            with self._groups_lock:
                group = self._groups.get(engine)
                if group is None:
                    group = self._groups[engine] = GroupCommit(lambda batch: self._append_batch(engine, batch))
        return group

    def _append_batch(self, engine: Engine, batch: Sequence[_Batched]) -> list[list[Appended]]:
        """Several interactions' events in one write transaction of their own (committed before this returns);
        their Appended lists, in order."""
        pending = [item for batched in batch for item in batched.pending]
        reviews = [review for batched in batch for review in batched.reviews]
        appended = self._append_alone(engine, pending, reviews)
        split, start = [], 0
        for batched in batch:
            split.append(appended[start : start + len(batched.pending)])
            start += len(batched.pending)
        return split

    def _append_alone(
        self,
        engine: Engine,
        pending: Sequence[tuple[Pending, bytes]],
        reviews: Sequence[ReviewItem],
        wait: bool = True,
    ) -> list[Appended] | None:
        """Append in a write transaction of its own. `wait=False` (SQLite on disk only): None at once, nothing
        written, if another connection holds the database (or the loop's connection is inside a transaction)."""
        dialect = engine.dialect
        postgresql = dialect.name == "postgresql"
        # PostgreSQL: a pooled connection per append; SQLite in memory: the pool's (another connection would be
        # another database); SQLite on disk: this thread's own writer
        pooled = not sqlite_file(engine)
        raw = dbapi = None
        try:
            if pooled:
                raw = engine.raw_connection()
                dbapi = raw.dbapi_connection
            else:
                dbapi = self._writer(engine, wait)
                if not wait and dbapi.in_transaction:  # a read of the loop is still open on it: not now
                    return None
            cursor = dbapi.cursor()
            try:
                if not postgresql:
                    try:
                        cursor.execute("BEGIN IMMEDIATE")  # the write lock up front (see gateway.store.engine)
                    except sqlite3.OperationalError as busy:
                        if wait or busy.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                            raise
                        return None
                appended = self._append_rows(cursor, postgresql, pending, reviews)
                dbapi.commit()
                return appended
            except BaseException:
                _rollback(dbapi)
                raise
            finally:
                cursor.close()
        except AuditWriteError:
            raise
        except Exception as problem:
            if dbapi is not None and not pooled:
                self._drop_writer(engine, wait)  # a fresh connection next time, whatever state this one is in
            raise _write_error(problem) from _wrapped(problem, dialect)
        finally:
            if pooled and raw is not None:
                raw.close()  # back to the pool

    def _writer(self, engine: Engine, wait: bool = True) -> Any:
        """This thread's writer connection (DB-API) to a SQLite file. `wait=False`: the event loop's never-waiting
        connection, whose BEGIN IMMEDIATE fails at once (busy timeout 0) instead of waiting for another writer and
        which leaves checkpoints to `checkpoint_wal`; the loop's reads are made on it too
        (`SingleStatements.of(engine, waiting=False)`), so the append's commit leaves their page cache warm."""
        if not wait:
            return SingleStatements.of(engine, waiting=False).connection().connection.dbapi_connection
        writers: dict[Engine, Any] = self._writers.__dict__.setdefault("by_engine", {})
        raw = writers.get(engine)
        if raw is None:
            raw = engine.raw_connection()  # configured by the engine's connect hooks (WAL, busy timeout, ...)
            raw.detach()  # this thread keeps it: it does not hold one of the pool's slots
            writers[engine] = raw
        return raw.dbapi_connection

    def _drop_writer(self, engine: Engine, wait: bool = True) -> None:
        if not wait:
            SingleStatements.of(engine, waiting=False).discard()
            return
        raw = self._writers.__dict__.get("by_engine", {}).pop(engine, None)
        if raw is not None:
            try:
                raw.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def _append_rows(
        self, cursor: Any, postgresql: bool, pending: Sequence[tuple[Pending, bytes]], reviews: Sequence[ReviewItem]
    ) -> list[Appended]:
        sql = _POSTGRESQL if postgresql else _SQLITE
        cursor.execute(sql.head)
        head = cursor.fetchone()
        if head is None:
            cursor.execute(sql.create_head)
            cursor.execute(sql.head)
            head = cursor.fetchone()
        last_seq, digest, count, highest = head
        if not pending:
            return []
        if sql.next_seqs is not None:
            cursor.execute(sql.next_seqs, (len(pending),))
            seqs = sorted(int(row[0]) for row in cursor.fetchall())
        else:  # SQLite: the write lock is held, so the next numbers are ours
            start = max(int(last_seq), int(highest or 0))
            seqs = list(range(start + 1, start + 1 + len(pending)))
        rule = self.checkpoint_rule
        rows, patients, appended, checkpoints = [], [], [], []
        for (item, body), seq in zip(pending, seqs, strict=True):
            event = item.event
            prev_hash, digest = digest, link_hash(digest, body)
            recorded = item.recorded or str(event["recorded"])
            rows.append((seq, str(event["id"]), recorded, item.kind, str(event.get("outcome", "")), item.client_id,
                         body, prev_hash, digest))
            patients.extend((seq, patient) for patient in sorted(set(item.patients)))
            count += 1
            if rule is not None and rule.every > 0 and count % rule.every == 0:
                checkpoints.append(make_checkpoint(seq, count, digest, recorded, rule.key_id, rule.sign))
            appended.append(Appended(seq, str(event["id"]), digest))
        cursor.executemany(sql.insert_event, rows)
        if patients:
            cursor.executemany(sql.insert_patient, patients)
        cursor.execute(sql.move_head, (seqs[-1], digest, count))
        for made in checkpoints:
            cursor.execute(sql.insert_checkpoint, (made.upto_seq, made.count, made.hash, made.recorded, made.key_id,
                                                   made.payload, made.signature))
        if reviews:
            cursor.executemany(sql.insert_review, [
                (r.event_id, r.patient, r.client_id, r.user_id, r.reason, r.opened, r.expires) for r in reviews
            ])
        return appended

    # -- break-the-glass review queue ------------------------------------------------------------------------

    def open_review(self, connection: Connection, item: ReviewItem) -> None:
        try:
            connection.execute(
                insert(audit_review).values(
                    event_id=item.event_id,
                    patient=item.patient,
                    client_id=item.client_id,
                    user_id=item.user_id,
                    reason=item.reason,
                    opened=item.opened,
                    expires=item.expires,
                    status="open",
                )
            )
        except Exception as problem:
            raise AuditWriteError(f"review item could not be written ({type(problem).__name__})") from problem

    def open_reviews(self, connection: Connection) -> list[dict[str, Any]]:
        rows = connection.execute(
            select(audit_review).where(audit_review.c.status == "open").order_by(audit_review.c.id)
        )
        return [dict(row._mapping) for row in rows]

    # -- reading ----------------------------------------------------------------------------------------------

    def events_for_patient(self, connection: Connection, patient: str) -> list[dict[str, Any]]:
        """The patient's access log (Wabvpz 15d/15e), oldest first."""
        query = (
            select(audit_event.c.body)
            .join(audit_event_patient, audit_event_patient.c.seq == audit_event.c.seq)
            .where(audit_event_patient.c.patient == patient)
            .order_by(audit_event.c.seq)
        )
        return [orjson.loads(row.body) for row in connection.execute(query)]

    def search(
        self,
        connection: Connection,
        patients: Iterable[str],
        since: str | None = None,
        before: str | None = None,
        offset: int = 0,
        count: int = 50,
    ) -> AuditPage:
        """One page of the events about any of `patients`, oldest first; `since`/`before` bound `recorded`."""
        seqs = select(audit_event_patient.c.seq).where(audit_event_patient.c.patient.in_(sorted(set(patients))))
        conditions = [audit_event.c.seq.in_(seqs)]
        if since is not None:
            conditions.append(audit_event.c.recorded >= since)
        if before is not None:
            conditions.append(audit_event.c.recorded < before)
        total = connection.execute(select(func.count()).select_from(audit_event).where(*conditions)).scalar_one()
        page = (
            select(audit_event.c.body).where(*conditions).order_by(audit_event.c.seq).offset(offset).limit(count)
        )
        return AuditPage(int(total), [orjson.loads(row.body) for row in connection.execute(page)])

    def get(self, connection: Connection, event_id: str) -> dict[str, Any] | None:
        row = connection.execute(select(audit_event.c.body).where(audit_event.c.event_id == event_id)).first()
        return orjson.loads(row.body) if row is not None else None

    def rows(self, connection: Connection, upto_seq: int | None = None) -> Iterator[ChainRow]:
        query = select(
            audit_event.c.seq, audit_event.c.event_id, audit_event.c.body, audit_event.c.prev_hash, audit_event.c.hash
        ).order_by(audit_event.c.seq)
        if upto_seq is not None:
            query = query.where(audit_event.c.seq <= upto_seq)
        for row in connection.execute(query):
            yield ChainRow(row.seq, row.event_id, bytes(row.body), row.prev_hash, row.hash)

    # -- checkpoints and verification --------------------------------------------------------------------------

    def checkpoint(self, connection: Connection, sign: Signer, key_id: str, recorded: str) -> Checkpoint | None:
        """Sign the current chain head (for a scheduler or `zcc-gateway audit checkpoint`); None if empty."""
        head = locked_head(connection)
        if head.count == 0:
            return None
        made = make_checkpoint(head.last_seq, head.count, head.last_hash, recorded, key_id, sign)
        store_checkpoint(connection, made)
        return made

    def stored_checkpoints(self, connection: Connection) -> list[Checkpoint]:
        rows = connection.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.id))
        return [
            Checkpoint(r.upto_seq, r.count, r.hash, r.recorded, r.key_id, bytes(r.payload), bytes(r.signature))
            for r in rows
        ]

    def verify(self, connection: Connection, check: SignatureCheck | None = None) -> Verification:
        """Recompute the chain from the genesis, or from the signed anchor a retention purge left; compare the
        result with the head row and (given a signature check) with every checkpoint."""
        hashes: dict[int, str] = {}

        def remembered() -> Iterator[ChainRow]:
            for row in self.rows(connection):
                hashes[row.seq] = row.hash
                yield row

        head_row = connection.execute(select(audit_chain_head).where(audit_chain_head.c.id == _HEAD_ID)).first()
        head = (head_row.count, head_row.last_hash) if head_row is not None else (0, GENESIS)
        checkpoints = self.stored_checkpoints(connection)
        first = connection.execute(
            select(audit_event.c.seq, audit_event.c.prev_hash).order_by(audit_event.c.seq).limit(1)
        ).first()
        start, first_seq = (0, GENESIS), (first.seq if first is not None else None)
        if (first is not None and first.prev_hash != GENESIS) or (first is None and head[0] > 0):
            anchor = _purge_anchor(checkpoints, first.prev_hash if first is not None else head[1], first_seq)
            if anchor is None:
                problem = "the chain does not start at the genesis and no signed purge anchor matches its start"
                return Verification(0, GENESIS, BrokenLink(first_seq, None, problem))
            start = (anchor.count, anchor.hash)
        result = verify_chain(remembered(), head, start)
        if not result.ok or check is None:
            return result
        for checkpoint in checkpoints:
            purged = first_seq is None or checkpoint.upto_seq < first_seq
            at = checkpoint.hash if purged else hashes.get(checkpoint.upto_seq)
            problem = checkpoint_problem(checkpoint, at, check)
            if problem:
                return Verification(result.count, result.last_hash, BrokenLink(checkpoint.upto_seq, None, problem))
        return result


class _Batched(NamedTuple):
    """One interaction's events (canonicalised by the thread that made them) and the review items they open."""

    pending: tuple[tuple[Pending, bytes], ...]
    reviews: tuple[ReviewItem, ...]


class _FailingClosed:
    """Any driver or serialisation failure inside becomes an AuditWriteError (the caller must not answer with
    data), chained to the driver error as SQLAlchemy's wrapper. A class: on every append, cheaper than a
    contextlib generator."""

    __slots__ = ("dialect",)

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, problem: BaseException | None, _: Any) -> bool:
        if problem is None or isinstance(problem, AuditWriteError) or not isinstance(problem, Exception):
            return False
        raise _write_error(problem) from _wrapped(problem, self.dialect)


def _canonical(item: Pending) -> tuple[Pending, bytes]:
    return item, canonicalize_built(item.event) if item.built else canonicalize(item.event)


def _rollback(dbapi: Any) -> None:
    try:
        dbapi.rollback()
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def _wrapped(problem: Exception, dialect: Any) -> BaseException:
    """A raw driver error as SQLAlchemy's wrapper (what gateway.store.availability classifies: 503 or 500)."""
    dbapi = getattr(dialect, "loaded_dbapi", None)
    if dbapi is not None and isinstance(problem, dbapi.Error):
        return DBAPIError.instance(None, None, problem, dbapi.Error)
    return problem


def _write_error(problem: Exception) -> AuditWriteError:
    return AuditWriteError(f"audit event could not be written ({type(problem).__name__})")


def _purge_anchor(checkpoints: list[Checkpoint], start_hash: str, first_seq: int | None) -> Checkpoint | None:
    """The checkpoint a purge wrote for the last removed event: its hash is the first kept event's link."""
    for checkpoint in reversed(checkpoints):
        if checkpoint.hash == start_hash and (first_seq is None or checkpoint.upto_seq < first_seq):
            return checkpoint
    return None


def store_checkpoint(connection: Connection, made: Checkpoint) -> None:
    connection.execute(
        insert(audit_checkpoint).values(
            upto_seq=made.upto_seq,
            count=made.count,
            hash=made.hash,
            recorded=made.recorded,
            key_id=made.key_id,
            payload=made.payload,
            signature=made.signature,
        )
    )


def locked_head(connection: Connection) -> Any:
    """The chain head row, locked for this transaction (created at the genesis on first use)."""
    query = _LOCK_HEAD if connection.dialect.name == "postgresql" else _HEAD
    head = connection.execute(query).first()
    if head is None:
        _create_head(connection)
        head = connection.execute(query).one()
    return head


def _create_head(connection: Connection) -> None:
    values = {"id": _HEAD_ID, "last_seq": 0, "last_hash": GENESIS, "count": 0}
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    connection.execute(upsert(audit_chain_head).values(**values).on_conflict_do_nothing(index_elements=["id"]))
