"""Audit tables (SQLAlchemy Core) on their own MetaData; the lead folds them into the Alembic migrations.

`audit_event` is append-only: one row per AuditEvent with its canonical JSON (RFC 8785) and the hash chain
(`hash = SHA-256(prev_hash || "\\n" || canonical JSON)`). `audit_chain_head` is a single row that serialises
appenders (it is updated, and so locked, in the writing transaction) and lets verification notice a truncated
tail. `audit_event_patient` indexes events by patient for the patient access log (Wabvpz 15d/15e). Every audited read
appends before it is answered, so each b-tree an event touches costs on that path: no index on `recorded`.
`audit_checkpoint` holds signed chain heads; `audit_review` the break-the-glass review queue.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table, Text

audit_metadata = MetaData()

audit_event = Table(
    "audit_event",
    audit_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("recorded", String(32), nullable=False),
    Column("kind", String(32), nullable=False),  # BALP pattern: PatientRead, PatientQuery, AuthZconsent, ...
    Column("outcome", String(4), nullable=False),  # AuditEvent.outcome 0 / 4 / 8 / 12
    Column("client_id", String(200), nullable=True),
    Column("body", LargeBinary, nullable=False),  # the canonical JSON of the AuditEvent
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_event_patient = Table(
    "audit_event_patient",
    audit_metadata,
    Column("patient", String(200), nullable=False),
    Column("seq", Integer, nullable=False),  # audit_event.seq (no FK: events are never deleted through the API)
    PrimaryKeyConstraint("patient", "seq"),
    sqlite_with_rowid=False,  # one b-tree per appended patient row (migration 0009)
)

audit_chain_head = Table(
    "audit_chain_head",
    audit_metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("count", Integer, nullable=False),
)

audit_checkpoint = Table(
    "audit_checkpoint",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("upto_seq", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded", String(32), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # canonical JSON that was signed
    Column("signature", LargeBinary, nullable=False),
)

audit_review = Table(
    "audit_review",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("patient", String(200), nullable=False),
    Column("client_id", String(200), nullable=True),
    Column("user_id", String(200), nullable=True),
    Column("reason", Text, nullable=False),
    Column("opened", String(32), nullable=False),
    Column("expires", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open | reviewed
    Column("reviewed_by", String(200), nullable=True),
    Column("reviewed_at", String(32), nullable=True),
    Column("finding", Text, nullable=True),
)
Index("ix_audit_review_status", audit_review.c.status, audit_review.c.opened)
