"""token index in key order carries the system: idx_token (param, code, res_key) INCLUDE (system), PostgreSQL

Revision ID: 0007
Revises: 0006 (0006_reference_source_type)

A token search with a system (`service-type=<system>|<code>`) could not walk its (param, code) rows in res_key
order without visiting the table: the key-ordered index (0005) lacked the system, so PostgreSQL walked the other
token filter (`status=free`: a third of all Slots) in key order and, for every free Slot, looked up all token
rows of that Slot to test the service type (1M Slots, `status=free&service-type=...&start=ge...`, 51 matches:
546 probes, 2,763 buffers, 1.6-1.7 ms of backend CPU). With the system in the index, both token filters are
index-only walks in key order that PostgreSQL merges (570 buffers, 0.8 ms). The system is an included column,
not a key column: the index keeps returning a (param, code) in res_key order with or without a system
condition, and so replaces the old one rather than adding a fourth index to idx_token.

Extended statistics (most common (param, code, system) combinations): PostgreSQL otherwise multiplies the
frequencies of `param = 'status'`, `code = 'free'` and the system as if they were independent (estimated 107,000
free Slots for 356,000, 17,600 of a category for 92,400) and, for some categories, merged only one token filter
and probed the other per candidate again (1,217 buffers instead of 637). With the combinations' own frequencies
every category gets the two-index merge. ANALYZE fills them (here once, then autovacuum as usual).

SQLite has no INCLUDE and plans without statistics (it drives by one filter and looks the others up by
res_key): nothing changes there.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEX = "ix_idx_token_param_code_key"
_BUILDING = "ix_idx_token_param_code_key_new"
_STATISTICS = "st_idx_token_param_code_system"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(_BUILDING, "idx_token", ["param", "code", "res_key"], unique=False,
                    postgresql_include=["system"])
    op.drop_index(_INDEX, table_name="idx_token")
    op.execute(f"ALTER INDEX {_BUILDING} RENAME TO {_INDEX}")
    op.execute(f"CREATE STATISTICS {_STATISTICS} (mcv) ON param, code, system FROM idx_token")
    op.execute("ANALYZE idx_token")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP STATISTICS IF EXISTS {_STATISTICS}")
    op.create_index(_BUILDING, "idx_token", ["param", "code", "res_key"], unique=False)
    op.drop_index(_INDEX, table_name="idx_token")
    op.execute(f"ALTER INDEX {_BUILDING} RENAME TO {_INDEX}")
