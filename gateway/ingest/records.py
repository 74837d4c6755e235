"""The ingestion record store: one row per received message, written before anything else happens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, literal_column, select, union_all, update

from gateway.ingest.schema import ingest_message
from gateway.store.engine import SingleStatements

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


def _same(column: Any) -> Any:
    """The records with the same (source, `column`), on the (source, `column`) index. Status and the record itself
    are filtered by the caller: with `status = 'accepted'` in the WHERE, SQLite (no statistics) walked the status
    index, i.e. every accepted record, and the lookup grew with the table (31 ms per message at 2,000)."""
    return select(ingest_message.c.id, ingest_message.c.received_at, ingest_message.c.status,
                  literal_column(f"'{column.name}'").label("same")).where(
        and_(ingest_message.c.source == bindparam("source"), column == bindparam(column.name)))


_SAME_BYTES = _same(ingest_message.c.sha256)
_SAME_MESSAGE_ID = _same(ingest_message.c.message_id)
_SAME_EITHER = union_all(_SAME_BYTES, _SAME_MESSAGE_ID)  # one round trip, each part on its own index


_ADD = insert(ingest_message)
_FINISH = update(ingest_message).where(ingest_message.c.id == bindparam("record_id"))


class IngestRecords:
    """Every statement here is its own transaction, on this thread's autocommit connection (no pool checkout,
    BEGIN or COMMIT around it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.single_statements = SingleStatements.of(engine)

    def add_received(self, record: IngestRecord, raw: bytes) -> None:
        """Store the raw message (committed on its own: kept whatever happens next)."""
        with self.single_statements.write() as connection:
            connection.execute(_ADD, {
                "id": record.id, "source": record.source, "sha256": record.sha256, "size": record.size, "raw": raw,
                "received_at": record.received_at, "submitted_by": record.submitted_by, "status": RECEIVED,
                "attempts": 0})

    def finish(self, record: IngestRecord) -> None:
        with self.single_statements.write() as connection:
            connection.execute(_FINISH, {
                "record_id": record.id, "status": record.status, "message_id": record.message_id,
                "interaction": record.interaction, "sender": record.sender, "sender_name": record.sender_name,
                "processed_at": record.processed_at, "attempts": record.attempts,
                "duplicate_of": record.duplicate_of,
                "outcome": json.dumps(record.outcome) if record.outcome else None,
                "unmapped": json.dumps(record.unmapped), "resources": json.dumps(record.resources),
                "flags": json.dumps(record.flags)})

    def get(self, record_id: str) -> IngestRecord | None:
        with self.single_statements() as connection:
            row = connection.execute(select(ingest_message).where(ingest_message.c.id == record_id)).first()
        return _record(row) if row is not None else None

    def raw(self, record_id: str) -> bytes | None:
        with self.single_statements() as connection:
            return connection.execute(
                select(ingest_message.c.raw).where(ingest_message.c.id == record_id)).scalar_one_or_none()

    def accepted_original(self, source: str, sha256: str | None, message_id: str | None, exclude: str) -> str | None:
        """The id of the earliest accepted record with the same bytes or the same message id (either may be None:
        not looked for)."""
        found = self.accepted_match(source, sha256, message_id, exclude)
        return found[0] if found else None

    def accepted_match(self, source: str, sha256: str | None, message_id: str | None, exclude: str
                       ) -> tuple[str, str] | None:
        """(id, "sha256" or "message_id": what is the same) of the earliest accepted record with the same bytes or
        the same message id. Each looked up on its own index, in one statement (one query with `sha256 = ? OR
        message_id = ?` scanned every accepted record); only the few records with that key are read (resends,
        duplicates)."""
        if sha256 and message_id:
            statement, parameters = _SAME_EITHER, {"source": source, "sha256": sha256, "message_id": message_id}
        elif sha256:
            statement, parameters = _SAME_BYTES, {"source": source, "sha256": sha256}
        elif message_id:
            statement, parameters = _SAME_MESSAGE_ID, {"source": source, "message_id": message_id}
        else:
            return None
        with self.single_statements() as connection:
            found = connection.execute(statement, parameters).all()
        accepted = [row for row in found if row.status == ACCEPTED and row.id != exclude]
        if not accepted:
            return None
        first = min(accepted, key=lambda row: (row.received_at, row.id, row.same != "sha256"))
        return first.id, first.same

    def ids_with_status(self, status: str) -> list[str]:
        with self.single_statements() as connection:
            return list(connection.execute(
                select(ingest_message.c.id).where(ingest_message.c.status == status)
                .order_by(ingest_message.c.received_at)).scalars())
