"""Who the ingestion writes as. The caller's identity is kept (organisation, role, scopes: the scope stage
still limits what a caller may have ingested), marked as the ingestion service, which writes the Provenance
of its own ingestions (a protected type the consent policy reserves for administrative writers)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from gateway.auth.identity import RequestIdentity
from gateway.auth.scopes import Scope


@dataclass(frozen=True)
class IngestionIdentity(RequestIdentity):
    is_admin: bool = True  # read by the consent stage: may write Provenance
    ingestion: bool = True


def ingestion_identity(caller: RequestIdentity) -> IngestionIdentity:
    values = {f.name: getattr(caller, f.name) for f in fields(RequestIdentity)}
    return IngestionIdentity(**values)


def cli_identity() -> IngestionIdentity:
    """The local operator running `zcc-gateway ingest` (trusted: has shell access to the database)."""
    return IngestionIdentity(
        client_id="cli", ura="00000000", organization_type="", role="ingest-cli", purpose_of_use="TREAT",
        scopes=(Scope("*", "cruds"),),
    )
