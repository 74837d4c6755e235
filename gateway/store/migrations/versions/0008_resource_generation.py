"""resource_generation: a counter that every change to `resource` or `idx_reference` moves (SQLite)

Revision ID: 0008
Revises: 0007 (0007_token_key_index_include_system)

The consent facts of a patient (gateway/consent/facts.py: zcc contacts, referrals, Consents, the URAs of
referral recipients) are read from `resource` joined to `idx_reference`. Triggers on both tables move this one
counter in the writing transaction, whichever process writes, so a facts cache keyed by it can never serve facts
older than the counter it was read with: it re-reads a patient's facts after any committed write.

SQLite only: its writers are serialised anyway, so one more row update per written row costs little. On
PostgreSQL the counter would be a row that every writing transaction of every instance locks until it commits;
there the facts are read for every request, as before (no table, so no cache).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = ("resource", "idx_reference")
_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _trigger(table: str, event: str) -> str:
    return f"resource_generation_{table}_{event.lower()}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE resource_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    op.execute("INSERT INTO resource_generation (id, n) VALUES (1, 0)")
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} "
                "BEGIN UPDATE resource_generation SET n = n + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, event)}")
    op.execute("DROP TABLE IF EXISTS resource_generation")
