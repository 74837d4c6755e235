"""Database tables of the auth component, on their own MetaData (to be folded into the Alembic migrations).

- `auth_client`: registered backend-service clients (one row per client id).
- `auth_client_audit`: one row per change to the registry: who changed which client, how, and when.
- `auth_assertion_jti`: client-assertion ids seen, kept until the assertion expires, so a replay is refused
  by every worker process, not only by the one that saw the first use."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

auth_client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("ura", String(8), nullable=False),
    Column("organization_type", String(16), nullable=False),
    Column("delegations", JSON, nullable=False),  # [{"ura": ..., "organization_type": ...}]
    Column("jwks", JSON, nullable=True),  # inline public JWKS, or
    Column("jwks_uri", Text, nullable=True),  # a URL the client publishes its JWKS at (the only accepted jku)
    Column("allowed_scopes", Text, nullable=False),  # space-separated SMART v2 scopes
    Column("allowed_roles", JSON, nullable=False),
    Column("allowed_purposes", JSON, nullable=False),
    Column("pinned_cert_thumbprint", String(64), nullable=True),  # base64url SHA-256 of the DER certificate
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

auth_client_audit = Table(
    "auth_client_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_auth_client_audit_client", "client_id", "recorded_at"),
)

auth_assertion_jti = Table(
    "auth_assertion_jti",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),  # unix seconds
    Index("ix_auth_assertion_jti_expires", "expires_at"),
)


def create_auth_tables(engine: Engine) -> None:
    """Create the tables if missing (tests and development until the Alembic migration exists)."""
    metadata.create_all(engine)
