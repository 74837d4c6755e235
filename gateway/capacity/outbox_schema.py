"""The rest-hook outbox table (`gateway.capacity.outbox`), on its own MetaData; migration 0004 creates it."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

outbox_metadata = MetaData()
capacity_outbox = Table(
    "capacity_outbox",
    outbox_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch", String(36), nullable=False),  # one per write transaction: one POST per Subscription and batch
    Column("subscription_id", String(64), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),  # epoch seconds (database clock on PostgreSQL)
    Column("state", String(16), nullable=False),  # pending | delivered | given-up
    Column("claimed_by", String(128), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("claims", Integer, nullable=False),
    Column("done_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
)
Index("ix_capacity_outbox_state", capacity_outbox.c.state, capacity_outbox.c.id)
