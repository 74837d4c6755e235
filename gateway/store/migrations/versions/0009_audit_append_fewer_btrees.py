"""audit: two fewer b-trees written per appended event (ix_audit_event_recorded gone; audit_event_patient keyed by
(patient, seq), on SQLite WITHOUT ROWID)

Revision ID: 0009
Revises: 0008 (0008_resource_generation)

Every audited read appends its events before it is answered, so each b-tree an event touches is on that path (on
SQLite one more page in the write-ahead log per b-tree and append; 9 -> 7 pages for a read's two events).

- `ix_audit_event_recorded` served one query only: the retention purge's first kept event, which now walks the
  chain in `seq` order from its start and stops at the first event inside the retention period (it reads the
  expired prefix it is about to delete anyway). The patient access log narrows by patient first.
- `audit_event_patient` was a table plus an index on (patient, seq): now (patient, seq) is its primary key, and on
  SQLite the table is that one b-tree (WITHOUT ROWID). Rows are unique per (patient, seq) by construction.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_recorded")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE audit_event_patient_new (patient VARCHAR(200) NOT NULL, seq INTEGER NOT NULL, "
            "PRIMARY KEY (patient, seq)) WITHOUT ROWID"
        )
        op.execute("INSERT OR IGNORE INTO audit_event_patient_new (patient, seq) SELECT patient, seq "
                   "FROM audit_event_patient")
        op.drop_table("audit_event_patient")
        op.rename_table("audit_event_patient_new", "audit_event_patient")
        return
    op.execute(
        "DELETE FROM audit_event_patient a USING audit_event_patient b "
        "WHERE a.ctid < b.ctid AND a.seq = b.seq AND a.patient = b.patient"
    )
    op.drop_index("ix_audit_event_patient_patient", table_name="audit_event_patient")
    op.create_primary_key("audit_event_patient_pkey", "audit_event_patient", ["patient", "seq"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_table(
            "audit_event_patient_old",
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("patient", sa.String(length=200), nullable=False),
        )
        op.execute("INSERT INTO audit_event_patient_old (seq, patient) SELECT seq, patient FROM audit_event_patient")
        op.drop_table("audit_event_patient")
        op.rename_table("audit_event_patient_old", "audit_event_patient")
    else:
        op.drop_constraint("audit_event_patient_pkey", "audit_event_patient", type_="primary")
    op.create_index("ix_audit_event_patient_patient", "audit_event_patient", ["patient", "seq"], unique=False)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_recorded", ["recorded"], unique=False)
