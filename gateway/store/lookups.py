"""Small lookups through the search index that several features share."""

from __future__ import annotations

from sqlalchemy import Connection, select

from gateway.store.schema import idx_token, resource


def patient_ids_with_identifier(connection: Connection, system: str, value: str) -> list[str]:
    """Ids of the live Patients carrying the identifier `system|value`, sorted."""
    query = (
        select(resource.c.id)
        .join(idx_token, idx_token.c.res_key == resource.c.res_key)
        .where(
            resource.c.type == "Patient",
            resource.c.deleted.is_(False),
            idx_token.c.param == "identifier",
            idx_token.c.system == system,
            idx_token.c.code == value,
        )
    )
    return sorted({row.id for row in connection.execute(query)})
