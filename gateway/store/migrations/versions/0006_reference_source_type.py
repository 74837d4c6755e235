"""idx_reference.source_type: the referencing resource's type, in the (param, target) index

Revision ID: 0006
Revises: 0005 (0005_token_param_code_key_index)

The consent facts query (gateway/consent/facts.py) asks for a patient's contacts, referrals and Consents. Without
the source type in the index it had to visit every reference to the patient — every Observation, every
Provenance — and look each one up in `resource` to learn its type, so its cost grew with the patient's record
(and ingestion, which runs it per message, slowed down as the store filled). With (param, target_id,
target_type, source_type) it seeks exactly the rows of the wanted types. Searches keep using the index's
(param, target_id, target_type) prefix.

Existing rows are filled from `resource.type` (the column is NOT NULL afterwards: a reference row without its
source type would be invisible to the consent facts query, which must never miss a Consent).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEX = "ix_idx_reference_param_target"


def upgrade() -> None:
    op.add_column("idx_reference", sa.Column("source_type", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE idx_reference SET source_type = "
        "(SELECT resource.type FROM resource WHERE resource.res_key = idx_reference.res_key)"
    )
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.alter_column("source_type", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index(_INDEX)
        batch_op.create_index(_INDEX, ["param", "target_id", "target_type", "source_type"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idx_reference", schema=None) as batch_op:
        batch_op.drop_index(_INDEX)
        batch_op.create_index(_INDEX, ["param", "target_id", "target_type"], unique=False)
        batch_op.drop_column("source_type")
