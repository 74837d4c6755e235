"""Who is calling: the verified identity every protected request carries through the pipeline.

It is built only from a verified access token (or, in explicit insecure-dev mode, synthesised and flagged),
so downstream stages (consent, audit) can rely on it without re-checking the token."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.auth.scopes import Scope

PURPOSES_OF_USE = frozenset({"TREAT", "COC", "ETREAT", "BTG"})
"""v3-ActReason codes the gateway accepts: treatment, coordination of care, emergency treatment, break-the-glass."""

ORGANIZATION_TYPE_SYSTEM = "http://nictiz.nl/fhir/NamingSystem/organization-type"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
PURPOSE_OF_USE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@dataclass(frozen=True)
class RequestIdentity:
    """The caller of one request.

    `ura` is the organisation the client acts for (its own URA or one delegated to it in the registry);
    `organization_type` a code from ORGANIZATION_TYPE_SYSTEM; `role` the subject role the client asserted
    (checked against its registration); `purpose_of_use` one of PURPOSES_OF_USE. `cert_thumbprint` is the
    base64url SHA-256 of the client certificate the token is bound to (RFC 8705), if any."""

    client_id: str
    ura: str
    organization_type: str
    role: str
    purpose_of_use: str
    scopes: tuple[Scope, ...]
    cert_thumbprint: str | None = None
    token_id: str | None = None
    expires_at: int | None = None
    insecure_dev: bool = False

    @property
    def break_the_glass(self) -> bool:
        return self.purpose_of_use == "BTG"


def local_administrator() -> RequestIdentity:
    """The identity of the gateway's own command line (demo data, ingestion from files) acting on this
    machine: an administrative client with every scope, audited like any other caller."""
    from gateway.auth.scopes import parse_scopes

    return RequestIdentity(
        client_id="zcc-gateway-cli", ura="00000000", organization_type="Z33", role="admin",
        purpose_of_use="TREAT", scopes=tuple(parse_scopes("system/*.cruds")),
    )
