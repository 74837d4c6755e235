"""The ingestion record store: one row per received message, written before anything else happens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, select, update

from gateway.ingest.schema import ingest_message

RECEIVED, ACCEPTED, REJECTED, DUPLICATE = "received", "accepted", "rejected", "duplicate"


@dataclass
class IngestRecord:
    id: str
    source: str
    sha256: str
    size: int
    received_at: str
    status: str
    submitted_by: str | None = None
    message_id: str | None = None
    interaction: str | None = None
    sender: str | None = None
    sender_name: str | None = None
    processed_at: str | None = None
    attempts: int = 0
    duplicate_of: str | None = None
    outcome: dict[str, Any] | None = None
    unmapped: list[dict[str, str]] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "source": self.source, "status": self.status, "sha256": self.sha256, "size": self.size,
            "receivedAt": self.received_at, "processedAt": self.processed_at, "submittedBy": self.submitted_by,
            "messageId": self.message_id, "interaction": self.interaction, "sender": self.sender,
            "senderName": self.sender_name, "attempts": self.attempts, "duplicateOf": self.duplicate_of,
            "outcome": self.outcome, "unmapped": self.unmapped, "resources": self.resources, "flags": self.flags,
        }


_JSON_COLUMNS = {"outcome", "unmapped", "resources", "flags"}


def _record(row: Any) -> IngestRecord:
    values = dict(row._mapping)
    values.pop("raw", None)
    for name in _JSON_COLUMNS:
        raw = values.get(name)
        values[name] = json.loads(raw) if raw else (None if name == "outcome" else [])
    return IngestRecord(**values)


def _accepted_where(column: Any) -> Any:
    return (select(ingest_message.c.id, ingest_message.c.received_at)
            .where(and_(ingest_message.c.source == bindparam("source"), column == bindparam(column.name),
                        ingest_message.c.status == ACCEPTED, ingest_message.c.id != bindparam("exclude")))
            .order_by(ingest_message.c.received_at).limit(1))


_SAME_BYTES = _accepted_where(ingest_message.c.sha256)
_SAME_MESSAGE_ID = _accepted_where(ingest_message.c.message_id)


class IngestRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_received(self, record: IngestRecord, raw: bytes) -> None:
        """Store the raw message (its own committed transaction: kept whatever happens next)."""
        with self.engine.begin() as connection:
            connection.execute(insert(ingest_message).values(
                id=record.id, source=record.source, sha256=record.sha256, size=record.size, raw=raw,
                received_at=record.received_at, submitted_by=record.submitted_by, status=RECEIVED, attempts=0,
            ))

    def finish(self, record: IngestRecord) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(ingest_message).where(ingest_message.c.id == record.id).values(
                status=record.status, message_id=record.message_id, interaction=record.interaction,
                sender=record.sender, sender_name=record.sender_name, processed_at=record.processed_at,
                attempts=record.attempts, duplicate_of=record.duplicate_of,
                outcome=json.dumps(record.outcome) if record.outcome else None,
                unmapped=json.dumps(record.unmapped), resources=json.dumps(record.resources),
                flags=json.dumps(record.flags),
            ))

    def get(self, record_id: str) -> IngestRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(ingest_message).where(ingest_message.c.id == record_id)).first()
        return _record(row) if row is not None else None

    def raw(self, record_id: str) -> bytes | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(ingest_message.c.raw).where(ingest_message.c.id == record_id)).scalar_one_or_none()

    def accepted_original(self, source: str, sha256: str | None, message_id: str | None, exclude: str) -> str | None:
        """The id of the earliest accepted record with the same bytes or the same message id (either may be None:
        not looked for). Two lookups, each on its own index (one query with `sha256 = ? OR message_id = ?` scanned
        every accepted record)."""
        found: list[Any] = []
        if not sha256 and not message_id:
            return None
        with self.engine.connect() as connection:
            if sha256:
                found += connection.execute(_SAME_BYTES, {"source": source, "sha256": sha256, "exclude": exclude})
            if message_id:
                found += connection.execute(_SAME_MESSAGE_ID, {"source": source, "message_id": message_id,
                                                               "exclude": exclude})
        return min(found, key=lambda row: (row.received_at, row.id)).id if found else None

    def ids_with_status(self, status: str) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(
                select(ingest_message.c.id).where(ingest_message.c.status == status)
                .order_by(ingest_message.c.received_at)).scalars())
