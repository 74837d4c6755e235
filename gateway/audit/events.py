"""AuditEvent construction following IHE BALP patterns, carrying the NEN 7513 fields.

NEN 7513 asks: who (user, role, organisation, client system), which patient, what (action, resources), when,
from where, why (purpose, rule, consent, break-the-glass reason) and the outcome. They map to:
agent (user: requestor, role, token id in `agent.policy` — never the token; organisation by URA; client
application and its network address), entity (patient, each resource, the query as base64), recorded,
source, purposeOfEvent + entity.detail (decision id, rule, policy, consent references, BTG reason), outcome.

BALP patterns used: PatientRead/Read, PatientQuery/Query, PatientCreate/Update/Delete and their basic forms,
and AuthZconsent for consent decisions.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from gateway.audit import codes
from gateway.memo import IdentityMemo


@dataclass(frozen=True)
class Actor:
    client_id: str | None = None
    user_id: str | None = None
    role: str | None = None
    ura: str | None = None
    organization_type: str | None = None
    token_jti: str | None = None
    address: str | None = None
    purpose_of_use: str | None = None


class EntryAccess(NamedTuple):
    """A Bundle entry folded into its transaction's or batch's AuditEvent."""

    kind: str
    method: str
    path: str
    query: str = ""
    status: int = 200
    diagnostics: str = ""


class Access(NamedTuple):
    """One interaction as the audit sees it (a NamedTuple, like the other records made for every event: ~3x faster
    to make than a frozen dataclass)."""

    kind: str  # gateway.fhir.interaction kind
    method: str
    path: str  # e.g. "Observation" or "Patient/1/$explain-access"
    query: str = ""  # the raw query string
    status: int = 200
    diagnostics: str = ""
    patient_data: bool = False
    patients: Sequence[str] = ()
    resources: Sequence[str] = ()  # references of what was disclosed or written
    decision_id: str | None = None
    btg_reason: str | None = None
    entries: Sequence[EntryAccess] = ()  # transaction/batch: the entries folded into this one event


class DecisionFacts(NamedTuple):
    """A consent decision for one patient (grouped: one per patient, rule and effect)."""

    patient: str | None
    effect: str
    rule_id: str
    policy_version: str
    reason_en: str
    reason_nl: str
    legal_basis: str = ""
    obligations: Sequence[str] = ()
    consent_references: Sequence[str] = ()
    resources: int = 0
    extra: Mapping[str, str] = MappingProxyType({})


_BALP_BASES = {"read": "Read", "vread": "Read", "create": "Create", "update": "Update", "delete": "Delete"}


def balp_kind(access: Access) -> str:
    patient = bool(access.patients) or access.patient_data
    base = _BALP_BASES.get(access.kind) or ("Query" if _is_query(access.kind) else "")
    if not base:
        return access.kind.capitalize() or "Interaction"
    return f"Patient{base}" if patient else base


def interaction_event(access: Access, actor: Actor, recorded: str, event_id: str, site: str) -> dict[str, Any]:
    """The interaction's AuditEvent: the patients, what was disclosed or written (a query's results by reference
    alone), the query, and the interaction's context. For a transaction or batch: `subtype` also lists the
    entries' interactions, `entity` every patient and resource of every entry (written ones as
    `Type/id/_history/n`) and the query of each search entry, and the `interaction` entity one `entry` detail per
    entry ("METHOD path -> status")."""
    kind = balp_kind(access)
    profile = codes.balp_profile(kind)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "meta": _meta(profile) if profile else {},
        "type": codes.REST_TYPE,
        "subtype": _subtype(tuple(dict.fromkeys([access.kind, *(entry.kind for entry in access.entries)]))),
        "action": codes.ACTIONS.get(access.kind, "E"),
        "recorded": recorded,
        "outcome": outcome_code(access.status),
        "outcomeDesc": access.diagnostics or f"HTTP {access.status}",
        "agent": agents(actor, site),
        "source": source(site),
        "entity": [],
    }
    if not event["meta"]:
        del event["meta"]
    if actor.purpose_of_use:
        event["purposeOfEvent"] = [_purpose(actor.purpose_of_use)]
    entities = [patient_entity(patient) for patient in access.patients]
    if _is_query(access.kind):
        # a query's results (NEN 7513: which data) by reference alone. BALP's query patterns record the query, not
        # its results, and give them no slice; the type and role codings of a `data` entity (the same two for every
        # result) would be four fifths of a 200-result event's canonical JSON, hashed and written before the answer
        entities += [{"what": {"reference": reference}} for reference in access.resources]
        entities.append(_query_entity(access.path, access.query))
    else:  # what a read or write disclosed or wrote: BALP's `data` entity
        entities += [_data_entity(reference) for reference in access.resources]
    entities += [_query_entity(entry.path, entry.query) for entry in access.entries if _is_query(entry.kind)]
    entities.append(_context_entity(access))
    event["entity"] = entities
    return event


def consent_event(
    decision: DecisionFacts, access: Access, actor: Actor, recorded: str, event_id: str, site: str
) -> dict[str, Any]:
    """The AuthZconsent event of a decision; what it says of the decision itself is made once per DecisionFacts
    object (`_DecisionParts`), only the request's own details are new."""
    parts = _DECISION_PARTS.made((decision,), (), _DecisionParts.of, decision)
    details = [{"type": "decision-id", "valueString": access.decision_id or ""}, *parts.details]
    if access.btg_reason:
        details.append({"type": "btg-reason", "valueString": access.btg_reason})
    details += parts.extra
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "meta": _meta(codes.balp_profile("AuthZconsent")),
        "type": codes.CONSENT_DECISION_TYPE,
        "subtype": parts.subtype,
        "action": "E",
        "recorded": recorded,
        "outcome": parts.outcome,
        "outcomeDesc": decision.reason_en,
        "agent": agents(actor, site),
        "source": source(site),
        "entity": [*parts.entities, {
            "type": codes.ENTITY_SYSTEM_OBJECT,
            "role": codes.ROLE_SECURITY_RESOURCE,
            "name": "consent-decision",
            "detail": details,
        }],
    }
    if actor.purpose_of_use:
        event["purposeOfEvent"] = [_purpose(actor.purpose_of_use)]
    return event


class _DecisionParts(NamedTuple):
    """What an AuthZconsent event says of its decision alone. Shared by the events of every request with that
    decision, so never changed (like `agents`)."""

    details: tuple[dict[str, str], ...]  # after the decision id
    extra: tuple[dict[str, str], ...]  # after the break-the-glass reason
    entities: tuple[dict[str, Any], ...]  # the patient and the Consents, before the decision entity
    subtype: list[dict[str, str]]
    outcome: str

    @classmethod
    def of(cls, decision: DecisionFacts) -> _DecisionParts:
        details = [
            {"type": "effect", "valueString": decision.effect},
            {"type": "rule", "valueString": decision.rule_id},
            {"type": "policy", "valueString": decision.policy_version},
            {"type": "reason-en", "valueString": decision.reason_en},
            {"type": "reason-nl", "valueString": decision.reason_nl},
            {"type": "resources", "valueString": str(decision.resources)},
        ]
        if decision.legal_basis:
            details.append({"type": "legal-basis", "valueString": decision.legal_basis})
        details += [{"type": "obligation", "valueString": code} for code in decision.obligations]
        extra = [{"type": key, "valueString": value} for key, value in sorted(decision.extra.items())]
        entities = [patient_entity(decision.patient)] if decision.patient else []
        entities += [_consent_entity(reference) for reference in decision.consent_references]
        return cls(tuple(details), tuple(extra), tuple(entities),
                   [{"system": codes.CONSENT_DECISION_SYSTEM, "code": decision.effect}],
                   "0" if decision.effect == "permit" else "4")


_DECISION_PARTS: IdentityMemo[_DecisionParts] = IdentityMemo(4096)


def outcome_code(status: int) -> str:
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


@lru_cache(maxsize=1024)
def agents(actor: Actor, site: str) -> list[dict[str, Any]]:
    """The agents of every event an actor causes: made once per actor and site, and shared by those events (never
    changed after it is made, like the codings in gateway.audit.codes)."""
    client: dict[str, Any] = {
        "type": codes.AGENT_SOURCE,
        "who": {"identifier": {"system": codes.CLIENT_ID_SYSTEM, "value": actor.client_id or "anonymous"}},
        "requestor": False,
    }
    if actor.address:
        client["network"] = {"address": actor.address, "type": "2"}
    server = {
        "type": codes.AGENT_DESTINATION,
        "who": {"display": "zcc-gateway"},
        "requestor": False,
        "network": {"address": site, "type": "5"},
    }
    user: dict[str, Any] = {
        "type": codes.AGENT_USER,
        "who": {
            "identifier": {"system": codes.USER_ID_SYSTEM, "value": actor.user_id or actor.client_id or "anonymous"}
        },
        "requestor": True,
    }
    if actor.role:
        user["role"] = [{"coding": [{"system": codes.ROLE_SYSTEM, "code": actor.role}]}]
    if actor.token_jti:
        user["policy"] = [actor.token_jti]  # BALP: the token's identifier, never the token
    if actor.purpose_of_use:
        user["purposeOfUse"] = [_purpose(actor.purpose_of_use)]
    found = [user, client, server]
    if actor.ura:
        organisation: dict[str, Any] = {
            "type": codes.AGENT_ORGANISATION,
            "who": {"identifier": {"system": codes.URA_SYSTEM, "value": actor.ura}},
            "requestor": False,
        }
        if actor.organization_type:
            organisation["role"] = [{"coding": [{"system": codes.ORGANIZATION_TYPE, "code": actor.organization_type}]}]
        found.append(organisation)
    return found


@lru_cache(maxsize=64)
def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [profile]}


@lru_cache(maxsize=256)
def _subtype(kinds: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"system": codes.RESTFUL_INTERACTION, "code": kind} for kind in kinds]


@lru_cache(maxsize=16)
def source(site: str) -> dict[str, Any]:
    return {"site": site, "observer": {"display": "zcc-gateway"}, "type": [codes.SOURCE_APPLICATION_SERVER]}


@lru_cache(maxsize=4096)
def patient_entity(patient: str) -> dict[str, Any]:
    reference = patient if "/" in patient and patient.startswith("http") else f"Patient/{patient}"
    return {"what": {"reference": reference}, "type": codes.ENTITY_PERSON, "role": codes.ROLE_PATIENT}


def _data_entity(reference: str) -> dict[str, Any]:
    return {"what": {"reference": reference}, "type": codes.ENTITY_SYSTEM_OBJECT, "role": codes.ROLE_DOMAIN_RESOURCE}


def _consent_entity(reference: str) -> dict[str, Any]:
    return {"what": {"reference": reference}, "type": codes.ENTITY_SYSTEM_OBJECT, "role": codes.ROLE_SECURITY_RESOURCE}


def _is_query(kind: str) -> bool:
    return kind.startswith(("search", "history")) or kind == "operation"


def _query_entity(path: str, query: str) -> dict[str, Any]:
    raw = f"{path}?{query}" if query else path
    return {
        "type": codes.ENTITY_SYSTEM_OBJECT,
        "role": codes.ROLE_QUERY,
        "query": base64.b64encode(raw.encode("utf-8")).decode("ascii"),
    }


def _context_entity(access: Access) -> dict[str, Any]:
    details = [{"type": "method", "valueString": access.method}, {"type": "path", "valueString": access.path}]
    if access.decision_id:
        details.append({"type": "decision-id", "valueString": access.decision_id})
    if access.btg_reason:
        details.append({"type": "btg-reason", "valueString": access.btg_reason})
    for entry in access.entries:
        outcome = f"{entry.status} {entry.diagnostics}" if entry.diagnostics else str(entry.status)
        details.append({"type": "entry", "valueString": f"{entry.method} {entry.path or '/'} -> {outcome}"})
    return {"type": codes.ENTITY_SYSTEM_OBJECT, "role": codes.ROLE_JOB, "name": "interaction", "detail": details}


@lru_cache(maxsize=64)
def _purpose(code: str) -> dict[str, Any]:
    return {"coding": [{"system": codes.PURPOSE_SYSTEM, "code": code}]}
