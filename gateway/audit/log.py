"""AuditLog: append AuditEvents to the chain on a given Connection (so they commit or roll back with the data
access they record), keep the break-the-glass review queue, write signed checkpoints and verify the chain.

Appends are serialised through the single `audit_chain_head` row: it is read FOR UPDATE (PostgreSQL) or under
the write transaction's lock (SQLite, BEGIN IMMEDIATE) and updated in the same transaction as the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from gateway.audit.chain import GENESIS, ChainRow, Verification, link_hash, verify_chain
from gateway.audit.checkpoints import Checkpoint, SignatureCheck, Signer, checkpoint_problem, make_checkpoint
from gateway.audit.jcs import canonicalize
from gateway.audit.schema import (
    audit_chain_head,
    audit_checkpoint,
    audit_event,
    audit_event_patient,
    audit_review,
)

_HEAD_ID = 1


class AuditWriteError(RuntimeError):
    """The audit record could not be written: the caller must not answer with data (fail closed)."""


@dataclass(frozen=True)
class Appended:
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


class AuditLog:
    def append(
        self,
        connection: Connection,
        event: dict[str, Any],
        kind: str,
        patients: Iterable[str] = (),
        client_id: str | None = None,
    ) -> Appended:
        try:
            return self._append(connection, event, kind, patients, client_id)
        except AuditWriteError:
            raise
        except Exception as problem:  # any driver/serialisation failure: fail closed
            raise AuditWriteError(f"audit event could not be written ({type(problem).__name__})") from problem

    def _append(
        self, connection: Connection, event: dict[str, Any], kind: str, patients: Iterable[str], client_id: str | None
    ) -> Appended:
        head = _locked_head(connection)
        prev_hash = head.last_hash if head is not None else GENESIS
        body = canonicalize(event)
        digest = link_hash(prev_hash, body)
        seq = connection.execute(
            insert(audit_event)
            .values(
                event_id=str(event["id"]),
                recorded=str(event["recorded"]),
                kind=kind,
                outcome=str(event.get("outcome", "")),
                client_id=client_id,
                body=body,
                prev_hash=prev_hash,
                hash=digest,
            )
            .returning(audit_event.c.seq)
        ).scalar_one()
        unique = sorted(set(patients))
        if unique:
            connection.execute(insert(audit_event_patient), [{"seq": seq, "patient": p} for p in unique])
        if head is None:
            connection.execute(insert(audit_chain_head).values(id=_HEAD_ID, last_seq=seq, last_hash=digest, count=1))
        else:
            connection.execute(
                update(audit_chain_head)
                .where(audit_chain_head.c.id == _HEAD_ID)
                .values(last_seq=seq, last_hash=digest, count=head.count + 1)
            )
        return Appended(seq, str(event["id"]), digest)

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

    def rows(self, connection: Connection) -> Iterator[ChainRow]:
        query = select(
            audit_event.c.seq, audit_event.c.event_id, audit_event.c.body, audit_event.c.prev_hash, audit_event.c.hash
        ).order_by(audit_event.c.seq)
        for row in connection.execute(query):
            yield ChainRow(row.seq, row.event_id, bytes(row.body), row.prev_hash, row.hash)

    # -- checkpoints and verification --------------------------------------------------------------------------

    def checkpoint(self, connection: Connection, sign: Signer, key_id: str, recorded: str) -> Checkpoint | None:
        head = _locked_head(connection)
        if head is None:
            return None
        made = make_checkpoint(head.last_seq, head.count, head.last_hash, recorded, key_id, sign)
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
        return made

    def verify(self, connection: Connection, check: SignatureCheck | None = None) -> Verification:
        """Recompute the chain; compare with the head row and (given a signature check) every checkpoint."""
        hashes: dict[int, str] = {}

        def remembered() -> Iterator[ChainRow]:
            for row in self.rows(connection):
                hashes[row.seq] = row.hash
                yield row

        head_row = connection.execute(select(audit_chain_head).where(audit_chain_head.c.id == _HEAD_ID)).first()
        head = (head_row.count, head_row.last_hash) if head_row is not None else (0, GENESIS)
        result = verify_chain(remembered(), head)
        if not result.ok or check is None:
            return result
        from gateway.audit.chain import BrokenLink

        for row in connection.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.id)):
            checkpoint = Checkpoint(
                row.upto_seq, row.count, row.hash, row.recorded, row.key_id, bytes(row.payload), bytes(row.signature)
            )
            problem = checkpoint_problem(checkpoint, hashes.get(row.upto_seq), check)
            if problem:
                return Verification(result.count, result.last_hash, BrokenLink(row.upto_seq, None, problem))
        return result


def _locked_head(connection: Connection) -> Any:
    query = select(audit_chain_head).where(audit_chain_head.c.id == _HEAD_ID)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return connection.execute(query).first()
