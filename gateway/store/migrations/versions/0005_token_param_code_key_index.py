"""token index in key order: idx_token (param, code, res_key)

Revision ID: 0005
Revises: 0004 (0004_capacity_outbox)

A token filter that matches many resources (`status=free`: a third of a million Slots) drives a search page
from this index: its rows for one (param, code) come out in res_key order, the order of the result, so the
database merges them with the resource keys and stops at _count instead of collecting and sorting every
match. (The (param, code, system) index returns equal codes in physical order.)
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.create_index("ix_idx_token_param_code_key", ["param", "code", "res_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_idx_token_param_code_key")
