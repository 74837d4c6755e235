"""Build the PDP's RequestContext from the authenticated identity and the request headers.

The identity comes from gateway.auth; we only rely on attribute names (duck typing, see `IdentityLike`).
Request-specific context the token cannot carry comes in headers (names below); the identity wins when both
say something. A missing identity yields an anonymous context, which the policy denies for patient data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from gateway.consent.model import Flow, RequestContext
from gateway.consent.policy import Parameters
from gateway.consent.timeutil import parse_instant

HEADER_FLOW = "x-zcc-flow"  # push | zcc | holder (break-the-glass follows from purpose BTG)
HEADER_PURPOSE = "x-zcc-purpose-of-use"  # only used when the token carries no purpose
HEADER_CONTACT = "x-zcc-contact"  # e.g. Encounter/123: the zcc contact this request belongs to
HEADER_REFERRAL = "x-zcc-referral"  # e.g. Task/9: the referral a push recipient answers
HEADER_EMERGENCY = "x-zcc-emergency"  # true
HEADER_EMERGENCY_REASON = "x-zcc-emergency-reason"  # free text, required for break-the-glass
HEADER_UNABLE_TO_CONSENT = "x-zcc-patient-unable-to-consent"  # true
WRITE_KINDS = frozenset({"create", "update", "delete", "patch"})
CONTEXT_HEADERS = (HEADER_FLOW, HEADER_PURPOSE, HEADER_CONTACT, HEADER_REFERRAL, HEADER_EMERGENCY,
                   HEADER_EMERGENCY_REASON, HEADER_UNABLE_TO_CONSENT)  # every header request_context reads


class IdentityLike(Protocol):
    """What gateway.auth.identity.RequestIdentity offers (at least)."""

    client_id: str
    ura: str | None
    organization_type: str | None
    role: str | None
    purpose_of_use: str | None
    scopes: Iterable[object]  # SMART scopes; str() gives "system/Type.cruds"
    token_id: str | None  # the token's jti


def request_context(
    identity: Any,
    headers: Mapping[str, str],
    interaction: str,
    params: Parameters,
) -> RequestContext:
    def attr(name: str) -> Any:
        return getattr(identity, name, None) if identity is not None else None

    def header(name: str) -> str | None:
        value = headers.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    raw_scopes = attr("scopes") or ()
    scopes = frozenset(str(scope) for scope in (raw_scopes.split() if isinstance(raw_scopes, str) else raw_scopes))
    role = attr("role")
    purpose = attr("purpose_of_use") or header(HEADER_PURPOSE)
    return RequestContext(
        client_id=str(attr("client_id") or "anonymous"),
        ura=attr("ura"),
        organization_type=attr("organization_type"),
        role=role,
        purpose_of_use=purpose,
        flow=_flow(purpose, attr("flow") or header(HEADER_FLOW), params),
        scopes=scopes,
        user_id=attr("user_id") or attr("subject"),
        interaction=interaction,
        is_write=interaction in WRITE_KINDS,
        is_admin=bool(attr("is_admin")) or role in params.admin_roles or bool(scopes & params.admin_scopes),
        contact_reference=attr("zcc_contact") or header(HEADER_CONTACT),
        referral_reference=attr("referral") or header(HEADER_REFERRAL),
        emergency=_true(attr("emergency")) or _true(header(HEADER_EMERGENCY)),
        emergency_reason=str(attr("emergency_reason") or header(HEADER_EMERGENCY_REASON) or ""),
        patient_unable_to_consent=_true(attr("patient_unable_to_consent")) or _true(header(HEADER_UNABLE_TO_CONSENT)),
        btg_started_at=_instant(attr("btg_started_at")),
        token_jti=attr("token_id") or attr("jti"),
    )


def _flow(purpose: str | None, asked: str | None, params: Parameters) -> Flow:
    if purpose == "BTG":
        return Flow.BTG
    if asked in {Flow.PUSH.value, Flow.ZCC.value, Flow.HOLDER.value}:
        return Flow(asked)
    return params.default_flow


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"})


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return parse_instant(value)
