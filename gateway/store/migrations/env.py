"""Alembic environment: runs on the connection handed over by `gateway.store.migrate`."""

from alembic import context

from gateway.audit.schema import audit_metadata
from gateway.auth.registry_schema import metadata as auth_metadata
from gateway.capacity.outbox_schema import outbox_metadata
from gateway.ingest.schema import metadata as ingest_metadata
from gateway.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=[metadata, auth_metadata, audit_metadata, ingest_metadata, outbox_metadata],
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
