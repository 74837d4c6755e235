"""Database schema (SQLAlchemy Core). Alembic migrations in `gateway/store/migrations` create exactly this.

`resource` holds the current version of every resource (also deleted ones, flagged), `resource_version` every
version ever written. The `idx_*` tables hold search index values of current, non-deleted versions; they are
rewritten in the same transaction as the resource. All index rows point at `resource.res_key`.

Dates are stored as fixed-width UTC strings `YYYY-MM-DDTHH:MM:SS.ffffff` (the implicit range of a partial
date is [low, high]), so that comparisons are plain string comparisons on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)

metadata = MetaData()

resource = Table(
    "resource",
    metadata,
    Column("res_key", Integer, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(32), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", LargeBinary, nullable=True),  # JSON bytes as served; NULL when deleted
    UniqueConstraint("type", "id", name="uq_resource_type_id"),
)
Index("ix_resource_type_updated", resource.c.type, resource.c.last_updated)
Index("ix_resource_type_key", resource.c.type, resource.c.res_key)  # type-only searches in storage order

resource_version = Table(
    "resource_version",
    metadata,
    Column("vkey", Integer, primary_key=True, autoincrement=True),
    Column("res_key", Integer, ForeignKey("resource.res_key"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(32), nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, DELETE (for history Bundle.entry.request)
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", LargeBinary, nullable=True),
    UniqueConstraint("type", "id", "version", name="uq_version_type_id_version"),
)
Index("ix_version_type_updated", resource_version.c.type, resource_version.c.last_updated)


def _index_table(name: str, *columns: Column) -> Table:
    table = Table(
        name,
        metadata,
        Column("res_key", Integer, ForeignKey("resource.res_key"), nullable=False),
        Column("param", String(100), nullable=False),
        *columns,
    )
    Index(f"ix_{name}_res", table.c.res_key)
    return table


idx_string = _index_table(
    "idx_string",
    Column("value", Text, nullable=False),  # normalised: lower case, accents removed
    Column("exact", Text, nullable=False),  # as in the resource
)
Index("ix_idx_string_param_value", idx_string.c.param, idx_string.c.value)

idx_token = _index_table(
    "idx_token",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("text", Text, nullable=True),  # normalised display/text for :text
)
Index("ix_idx_token_param_code", idx_token.c.param, idx_token.c.code, idx_token.c.system)
# In result order: a (param, code)'s rows by res_key, so a page of a common token walks in key order and stops at
# _count. PostgreSQL: the system included (not a key column: the order stays by res_key), so `system|code` walks
# index-only too, and two token filters merge without visiting the table (migration 0007). SQLite has no INCLUDE.
Index("ix_idx_token_param_code_key", idx_token.c.param, idx_token.c.code, idx_token.c.res_key,
      postgresql_include=["system"])
# PostgreSQL: the frequencies of (param, code, system) combinations, not a product of the three columns' own (which
# estimated 107,000 `status=free` rows for 356,000 on 1M Slots and so picked a plan that probes the table per
# candidate for some categories; migration 0007). Filled by ANALYZE.
event.listen(idx_token, "after_create", DDL(
    "CREATE STATISTICS st_idx_token_param_code_system (mcv) ON param, code, system FROM idx_token",
).execute_if(dialect="postgresql"))

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("url", Text, nullable=True),  # absolute / canonical reference, with version stripped
    Column("source_type", String(64), nullable=False),  # the referencing resource's type (= resource.type)
)
# `source_type` last: searches seek on (param, target_id[, target_type]) as before; the consent facts query
# (gateway/consent/facts.py) seeks on all four and so visits only the contacts, referrals and Consents of a
# patient, not every Observation or Provenance that references it.
Index(
    "ix_idx_reference_param_target",
    idx_reference.c.param,
    idx_reference.c.target_id,
    idx_reference.c.target_type,
    idx_reference.c.source_type,
)

idx_date = _index_table(
    "idx_date",
    Column("low", String(32), nullable=False),
    Column("high", String(32), nullable=False),
)
Index("ix_idx_date_param_low", idx_date.c.param, idx_date.c.low)

idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
)
Index("ix_idx_number_param_value", idx_number.c.param, idx_number.c.value)

idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
)
Index("ix_idx_quantity_param_value", idx_quantity.c.param, idx_quantity.c.value)

idx_uri = _index_table(
    "idx_uri",
    Column("value", Text, nullable=False),
)
Index("ix_idx_uri_param_value", idx_uri.c.param, idx_uri.c.value)

INDEX_TABLES = {
    "string": idx_string,
    "token": idx_token,
    "reference": idx_reference,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "uri": idx_uri,
}
