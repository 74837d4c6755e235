"""The ingestion tables (SQLAlchemy Core, own MetaData; to be folded into the Alembic migrations)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

ingest_message = Table(
    "ingest_message",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(16), nullable=False),  # hap | rav | vvt | ggz
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary, nullable=False),  # the message exactly as received
    Column("received_at", String(40), nullable=False),
    Column("submitted_by", String(128), nullable=True),  # client id of the caller (or "cli")
    Column("status", String(16), nullable=False),  # received | accepted | rejected | duplicate
    Column("message_id", String(256), nullable=True),  # root|extension of the message id
    Column("interaction", String(64), nullable=True),
    Column("sender", String(256), nullable=True),  # system|value of the sending organisation
    Column("sender_name", String(256), nullable=True),
    Column("processed_at", String(40), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("duplicate_of", String(36), nullable=True),
    Column("outcome", Text, nullable=True),  # OperationOutcome JSON: why rejected, warnings
    Column("unmapped", Text, nullable=True),  # JSON [{xpath, value}]
    Column("resources", Text, nullable=True),  # JSON ["Type/id/_history/n", ...]
    Column("flags", Text, nullable=True),  # JSON ["bsn-demographics-conflict", ...]
)
Index("ix_ingest_message_source_sha", ingest_message.c.source, ingest_message.c.sha256)
Index("ix_ingest_message_source_msgid", ingest_message.c.source, ingest_message.c.message_id)
Index("ix_ingest_message_status", ingest_message.c.status)


def create_ingest_tables(engine) -> None:  # type: ignore[no-untyped-def]
    """For tests and first runs until the lead's Alembic migration carries these tables."""
    metadata.create_all(engine)
