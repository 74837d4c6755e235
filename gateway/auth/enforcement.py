"""Per-request authorisation decisions the REST layer asks for: may this identity do this interaction on
this resource type, and may it act for this organisation? Everything fails closed: no identity, no access."""

from __future__ import annotations

from gateway.auth.errors import Forbidden
from gateway.auth.identity import RequestIdentity
from gateway.auth.scopes import Access, access_for

SMART_PERMISSION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "search-system": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
"""FHIR interaction kind -> SMART v2 permission letter (conditional create/update/delete also need 's')."""

ANY_TYPE = "*"
"""Pass as resource type for system-level interactions: only `system/*.<x>` scopes cover those."""


def require_scope(identity: RequestIdentity | None, resource_type: str, interaction: str) -> Access:
    """Raise Forbidden unless the identity's scopes cover `interaction` ('c','r','u','d','s' or a FHIR
    interaction kind such as 'search-type') on `resource_type`. The returned Access lists the query
    restrictions the caller must still apply when the covering scopes are restricted."""
    if identity is None:
        raise Forbidden("the request carries no authenticated identity")
    letter = SMART_PERMISSION.get(interaction, interaction)
    if letter not in ("c", "r", "u", "d", "s"):
        raise ValueError(f"unknown interaction {interaction!r}")
    access = access_for(identity.scopes, resource_type, letter)
    if not access.allowed:
        what = "any resource type" if resource_type == ANY_TYPE else resource_type
        raise Forbidden(f"the granted scopes do not allow '{letter}' on {what}")
    return access


def require_organization(identity: RequestIdentity | None, ura: str) -> None:
    """Raise Forbidden when the request context (e.g. the sender URA of an ingested message) names another
    organisation than the one the token was issued for."""
    if identity is None:
        raise Forbidden("the request carries no authenticated identity")
    if identity.insecure_dev:
        return
    if identity.ura != ura:
        raise Forbidden(f"the token acts for URA {identity.ura}, not for URA {ura}")
