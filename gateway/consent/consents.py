"""Privacy Consent resources -> ConsentRecords, and the consent verdict for one question.

Three kinds of privacy consent arrive as FHIR `Consent` (scope `patient-privacy`):
- an objection of the patient (`provision.type = deny`): overrides the WGBO's presumed consent for push;
- an explicit consent (`provision.type = permit`), Mitz-style: per data-holder category (actor role CST),
  requester category (actor role IRCP), data category (provision.code) and period;
- an ad-hoc consent given on the spot: a permit with a period of at most 72 hours and a verification
  (who verified it). One that breaks those rules is kept but marked invalid (it never permits).

Mitz notification semantics: a "no" arrives as `status = inactive` *without* `provision.type`; it is a deny
at the specificity it names. `inactive` *with* a provision.type is a withdrawn consent and is ignored, as are
draft, proposed, rejected and entered-in-error.

Precedence: among the records that apply, the most specific one wins (a named organisation beats a category,
which beats "any"); at equal specificity a deny wins. Nothing applicable means no consent (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.consent.model import ConsentRecord
from gateway.consent.timeutil import parse_instant

ORGANIZATION_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
CONSENT_KIND = "http://zcc-gateway.nl/fhir/CodeSystem/consent-kind"
DATA_CATEGORY = "http://zcc-gateway.nl/fhir/CodeSystem/data-category"
PRIVACY_SCOPE = "patient-privacy"
HOLDER_ROLES = frozenset({"CST"})  # custodian: the data holder
REQUESTER_ROLES = frozenset({"IRCP", "PRCP"})  # information recipient / primary recipient
_ORIGINS = frozenset({"objection", "explicit", "adhoc", "mitz"})


@dataclass(frozen=True)
class ConsentQuestion:
    """May `requester` receive `data_category` data held by `holder`, for `purpose`, at `at`?"""

    patient: str
    at: datetime
    purpose: str | None = None
    requester_category: str | None = None
    requester_ura: str | None = None
    holder_category: str | None = None
    holder_ura: str | None = None
    data_category: str | None = None


@dataclass(frozen=True)
class ConsentVerdict:
    kind: str  # "permit" | "deny" | "none"
    records: tuple[ConsentRecord, ...] = ()

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(record.reference for record in self.records)


NO_CONSENT = ConsentVerdict("none")


# -- parsing -----------------------------------------------------------------------------------------------


def is_privacy_consent(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") == "Consent" and PRIVACY_SCOPE in _codes(resource.get("scope"))


def parse_consent(
    resource: Mapping[str, Any], type_categories: Mapping[str, str], adhoc_max_hours: float = 72
) -> list[ConsentRecord]:
    """The records one privacy Consent stands for (one per provision, nested ones inherit); [] if it says nothing."""
    if not is_privacy_consent(resource):
        return []
    status = resource.get("status")
    provision = resource.get("provision") if isinstance(resource.get("provision"), dict) else {}
    top_type = provision.get("type")
    if status == "active" and top_type in {"permit", "deny"}:
        kind = top_type
    elif status == "inactive" and top_type is None:
        kind = "deny"  # Mitz "no"
    else:
        return []
    patient = _patient_id(resource)
    if patient is None:
        return []
    reference = f"Consent/{resource.get('id', '')}"
    origin = _origin(resource, kind, status)
    base = _provision_record(reference, patient, kind, origin, resource, provision, type_categories, None)
    records = [_checked_adhoc(base, resource, adhoc_max_hours)]
    for nested in provision.get("provision") or ():
        if isinstance(nested, dict) and nested.get("type") in {"permit", "deny"}:
            child = _provision_record(
                reference, patient, nested["type"], origin, resource, nested, type_categories, base
            )
            records.append(_checked_adhoc(child, resource, adhoc_max_hours))
    return records


def _provision_record(
    reference: str,
    patient: str,
    kind: str,
    origin: str,
    resource: Mapping[str, Any],
    provision: Mapping[str, Any],
    type_categories: Mapping[str, str],
    parent: ConsentRecord | None,
) -> ConsentRecord:
    period = provision.get("period") if isinstance(provision.get("period"), dict) else {}
    holders, requesters = _actors(provision.get("actor") or ())
    data_categories = {code for concept in provision.get("code") or () for code in _codes(concept, DATA_CATEGORY)}
    data_categories |= {type_categories.get(c.get("code", ""), "other") for c in provision.get("class") or ()}
    purposes = frozenset(c.get("code") for c in provision.get("purpose") or () if isinstance(c, dict) and c.get("code"))
    record = ConsentRecord(
        reference=reference,
        patient=patient,
        kind=kind,
        origin=origin,
        start=parse_instant(period.get("start")) or (parent.start if parent else None),
        end=parse_instant(period.get("end"), end=True) or (parent.end if parent else None),
        purposes=purposes or (parent.purposes if parent else frozenset()),
        holder_categories=frozenset(holders[0]) or (parent.holder_categories if parent else frozenset()),
        holder_uras=frozenset(holders[1]) or (parent.holder_uras if parent else frozenset()),
        requester_categories=frozenset(requesters[0]) or (parent.requester_categories if parent else frozenset()),
        requester_uras=frozenset(requesters[1]) or (parent.requester_uras if parent else frozenset()),
        data_categories=frozenset(data_categories) or (parent.data_categories if parent else frozenset()),
        verified_by=_verifier(resource),
    )
    return record


def _checked_adhoc(record: ConsentRecord, resource: Mapping[str, Any], max_hours: float) -> ConsentRecord:
    """An ad-hoc consent permits only with a verifier and a closed period of at most `max_hours`."""
    if record.origin != "adhoc" or record.kind != "permit":
        return record
    bounded = record.start is not None and record.end is not None
    short = bounded and record.end - record.start <= timedelta(hours=max_hours)  # type: ignore[operator]
    if not (short and record.verified_by):
        return replace(record, valid=False)
    return record


def _origin(resource: Mapping[str, Any], kind: str, status: str) -> str:
    for concept in resource.get("category") or ():
        for code in _codes(concept, CONSENT_KIND):
            if code in _ORIGINS:
                return code
    if status == "inactive":
        return "mitz"
    return "objection" if kind == "deny" else "explicit"


def _actors(actors: Iterable[Any]) -> tuple[tuple[set[str], set[str]], tuple[set[str], set[str]]]:
    holders: tuple[set[str], set[str]] = (set(), set())
    requesters: tuple[set[str], set[str]] = (set(), set())
    for actor in actors:
        if not isinstance(actor, dict):
            continue
        roles = _codes(actor.get("role"))
        target = holders if roles & HOLDER_ROLES else requesters if roles & REQUESTER_ROLES else None
        identifier = (actor.get("reference") or {}).get("identifier") or {}
        if target is None or not isinstance(identifier, dict) or not identifier.get("value"):
            continue
        if identifier.get("system") == ORGANIZATION_TYPE:
            target[0].add(identifier["value"])
        elif identifier.get("system") == URA:
            target[1].add(identifier["value"])
    return holders, requesters


def _verifier(resource: Mapping[str, Any]) -> str | None:
    for verification in resource.get("verification") or ():
        if isinstance(verification, dict) and verification.get("verified") is True:
            who = verification.get("verifiedWith") or {}
            text = who.get("reference") or (who.get("identifier") or {}).get("value") or who.get("display")
            if text:
                return str(text)
    return None


def _patient_id(resource: Mapping[str, Any]) -> str | None:
    reference = (resource.get("patient") or {}).get("reference")
    if isinstance(reference, str) and "Patient/" in reference:
        return reference.rsplit("Patient/", 1)[1].split("/")[0] or None
    return None


def _codes(concept: Any, system: str | None = None) -> set[str]:
    if isinstance(concept, list):
        return {code for item in concept for code in _codes(item, system)}
    if not isinstance(concept, dict):
        return set()
    return {
        c["code"]
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and isinstance(c.get("code"), str) and (system is None or c.get("system") == system)
    }


# -- evaluation --------------------------------------------------------------------------------------------


def applies(record: ConsentRecord, question: ConsentQuestion) -> bool:
    if not record.valid or record.patient != question.patient:
        return False
    if record.start is not None and question.at < record.start:
        return False
    if record.end is not None and question.at > record.end:
        return False
    return (
        _dimension(record.purposes, question.purpose)
        and _dimension(record.data_categories, question.data_category)
        and _organisation(record.holder_categories, record.holder_uras, question.holder_category, question.holder_ura)
        and _organisation(
            record.requester_categories, record.requester_uras, question.requester_category, question.requester_ura
        )
    )


def specificity(record: ConsentRecord) -> int:
    """A named organisation (2) beats a category (1) beats any (0), per dimension; summed."""

    def org(categories: frozenset[str], uras: frozenset[str]) -> int:
        return 2 if uras else 1 if categories else 0

    return (
        org(record.holder_categories, record.holder_uras)
        + org(record.requester_categories, record.requester_uras)
        + (1 if record.data_categories else 0)
        + (1 if record.purposes else 0)
    )


def verdict(records: Iterable[ConsentRecord], question: ConsentQuestion) -> ConsentVerdict:
    applicable = [record for record in records if applies(record, question)]
    if not applicable:
        return NO_CONSENT
    best = max(specificity(record) for record in applicable)
    winners = tuple(record for record in applicable if specificity(record) == best)
    denies = tuple(record for record in winners if record.kind == "deny")
    return ConsentVerdict("deny", denies) if denies else ConsentVerdict("permit", winners)


def _dimension(values: frozenset[str], asked: str | None) -> bool:
    return not values or (asked is not None and asked in values)


def _organisation(categories: frozenset[str], uras: frozenset[str], category: str | None, ura: str | None) -> bool:
    if uras:
        return ura is not None and ura in uras
    return _dimension(categories, category)
