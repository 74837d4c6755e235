"""The named conditions policy rules are made of. Each is a small pure predicate; the policy file refers to
them by name, and loading a policy that names an unknown condition fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.consent import consents
from gateway.consent.consents import ConsentQuestion, ConsentVerdict
from gateway.consent.model import DisclosedResource, Flow, PatientFacts, RequestContext
from gateway.consent.policy import Parameters

PUSH_EXCLUDED_ORIGINS = frozenset({"mitz"})  # a Mitz "no" is about pull availability, not WGBO push
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RequestTarget:
    """What a request aims at, before any data is read."""

    resource_type: str | None
    patient_data_target: bool
    protected_write: bool
    now: datetime

    @property
    def timeless(self) -> tuple[object, ...]:
        """Every field but `now` (gateway.consent.pdp.decide_request remembers decisions by these)."""
        return self.resource_type, self.patient_data_target, self.protected_write


@dataclass(frozen=True)
class Evaluation:
    """One (request, resource, patient) question to the disclosure rules."""

    request: RequestContext
    resource: DisclosedResource
    facts: PatientFacts | None  # None when the resource is about no (known) patient
    now: datetime
    params: Parameters
    consulted: list[str] = field(default_factory=list)  # Consent references that answered a condition

    def question(self, **overrides: object) -> ConsentQuestion:
        values: dict[str, object] = {
            "patient": self.facts.patient if self.facts else "",
            "at": self.now,
            "purpose": self.request.purpose_of_use,
            "requester_category": self.request.organization_type,
            "requester_ura": self.request.ura,
            "holder_category": self.resource.holder_category,
            "holder_ura": self.resource.holder_ura,
            "data_category": self.resource.data_category,
        }
        values.update(overrides)
        return ConsentQuestion(**values)  # type: ignore[arg-type]


RequestCondition = Callable[[RequestContext, RequestTarget, Parameters], bool]
DisclosureCondition = Callable[[Evaluation], bool]


# -- request conditions (no data read yet) -------------------------------------------------------------


def _btg_emergency_flag(request: RequestContext, _: object, __: object) -> bool:
    return request.emergency


def _btg_reason_given(request: RequestContext, _: object, __: object) -> bool:
    return bool(request.emergency_reason.strip())


def _btg_unable(request: RequestContext, _: object, __: object) -> bool:
    return request.patient_unable_to_consent


def _btg_role(request: RequestContext, _: object, params: Parameters) -> bool:
    return request.role in params.btg_roles


def btg_within_time_box(request: RequestContext, now: datetime, params: Parameters) -> bool:
    if request.btg_started_at is None:
        return True  # the grant starts with this request
    return now - request.btg_started_at <= timedelta(hours=params.btg_time_box_hours)


def _purpose_allowed(request: RequestContext, _: object, params: Parameters) -> bool:
    return request.purpose_of_use in params.allowed_purposes


REQUEST_CONDITIONS: dict[str, RequestCondition] = {
    "infrastructure": lambda r, t, p: r.interaction in {"capabilities", "batch", "transaction"},
    "write": lambda r, t, p: r.is_write,
    "protected_write": lambda r, t, p: t.protected_write,
    "modifies_immutable": lambda r, t, p: (
        r.interaction in {"update", "delete", "patch"} and t.resource_type in p.immutable_types
    ),
    "admin_client": lambda r, t, p: r.is_admin,
    "patient_data_target": lambda r, t, p: t.patient_data_target,
    "purpose_allowed": _purpose_allowed,
    "flow_btg": lambda r, t, p: r.flow is Flow.BTG,
    "btg_emergency_flag": _btg_emergency_flag,
    "btg_reason_given": _btg_reason_given,
    "btg_patient_unable_to_consent": _btg_unable,
    "btg_role_allowed": _btg_role,
    "btg_within_time_box": lambda r, t, p: btg_within_time_box(r, t.now, p),
}


# -- disclosure conditions -----------------------------------------------------------------------------


def active_zcc_contact(e: Evaluation) -> bool:
    if e.facts is None:
        return False
    window = timedelta(hours=e.params.zcc_contact_window_hours)
    named = e.request.contact_reference
    if named is None and e.params.require_named_contact:
        return False
    for contact in e.facts.contacts:
        if named is not None and contact.reference != named:
            continue
        resource_type = contact.reference.split("/")[0]
        if contact.patient != e.facts.patient or contact.status not in e.params.contact_types.get(resource_type, ()):
            continue
        moment = contact.end or contact.start
        if moment is None:
            continue
        if contact.start is not None and contact.start > e.now + CLOCK_SKEW:
            continue
        if moment >= e.now - window:
            return True
    return False


def referral_to_requester(e: Evaluation) -> bool:
    if e.facts is None or not e.request.ura:
        return False
    for referral in e.facts.referrals:
        if e.request.referral_reference is not None and referral.reference != e.request.referral_reference:
            continue
        resource_type = referral.reference.split("/")[0]
        if (
            referral.patient == e.facts.patient
            and referral.status in e.params.referral_types.get(resource_type, ())
            and e.request.ura in referral.recipient_uras
        ):
            return True
    return False


def consent_verdict(
    e: Evaluation, excluded_origins: frozenset[str] = frozenset(), **question: object
) -> ConsentVerdict:
    if e.facts is None:
        return consents.NO_CONSENT
    records = [record for record in e.facts.consents if record.origin not in excluded_origins]
    found = consents.verdict(records, e.question(**question))
    e.consulted.extend(found.references)
    return found


def push_objection(e: Evaluation) -> bool:
    return consent_verdict(e, PUSH_EXCLUDED_ORIGINS).kind == "deny"


def holder_consent_permit(e: Evaluation) -> bool:
    return e.facts is not None and e.facts.consent_error is None and consent_verdict(e).kind == "permit"


def explicit_ggz_consent(e: Evaluation) -> bool:
    """A permit that explicitly covers *this* ggz data: it names the data category `ggz`, or this resource comes
    from a ggz data holder and the permit names that ggz holder category. A permit that merely lists a ggz holder
    category next to others does not cover ggz-labelled data held elsewhere (a blanket consent is not an explicit
    consent for ggz data). Fail closed: a consent source error or anything short of such a permit is no."""
    if e.facts is None or e.facts.consent_error is not None:
        return False
    found = consent_verdict(e, data_category="ggz")
    if found.kind != "permit":
        return False
    holder = e.resource.holder_category
    ggz_holder = holder is not None and holder in e.params.ggz_organization_types
    return any("ggz" in r.data_categories or (ggz_holder and holder in r.holder_categories) for r in found.records)


def btg_refused(e: Evaluation) -> bool:
    """A recorded refusal (not a Mitz pull "no") that covers emergencies: fail closed when unsure."""
    if e.facts is None:
        return True
    for purpose in ("BTG", "ETREAT"):
        found = consent_verdict(e, PUSH_EXCLUDED_ORIGINS, purpose=purpose, data_category=None)
        if found.kind == "deny":
            return True
    return False


def in_emergency_dataset(e: Evaluation) -> bool:
    statuses = e.params.emergency_dataset.get(e.resource.data_category)
    if statuses is None:
        return False
    return not statuses or e.resource.status in statuses


def requester_is_ggz(e: Evaluation) -> bool:
    request = e.request
    return request.organization_type in e.params.ggz_organization_types or request.role in e.params.ggz_roles


def _request(name: str) -> DisclosureCondition:
    condition = REQUEST_CONDITIONS[name]
    return lambda e: condition(e.request, RequestTarget(e.resource.resource_type, True, False, e.now), e.params)


def instants(facts: PatientFacts | None, request: RequestContext, params: Parameters) -> tuple[datetime, ...]:
    """Every instant at which the answer of a condition above about these facts and this request can change, sorted:
    the conditions compare `now` with nothing else. A contact's start less the clock skew and its end (or start)
    plus the zcc window (`active_zcc_contact`); a Consent's start and end (`consents.applies`); the end of the
    break-the-glass time box (`btg_within_time_box`). Between two of them, and at each, every condition answers
    alike (gateway.consent.pdp.decide_shape relies on it: a new comparison with `now` must add its instant here)."""
    found: list[datetime] = []

    def add(instant: datetime | None, shift: timedelta = timedelta(0)) -> None:
        if instant is None:
            return
        try:
            found.append(instant + shift)
        except OverflowError:  # beyond the calendar: no `now` reaches it, so no answer changes there
            pass

    window = timedelta(hours=params.zcc_contact_window_hours)
    for contact in facts.contacts if facts is not None else ():
        add(contact.start, -CLOCK_SKEW)
        add(contact.end or contact.start, window)
    for record in facts.consents if facts is not None else ():
        add(record.start)
        add(record.end)
    add(request.btg_started_at, timedelta(hours=params.btg_time_box_hours))
    return tuple(sorted(found))


DISCLOSURE_CONDITIONS: dict[str, DisclosureCondition] = {
    "patient_data": lambda e: e.resource.patient_data,
    "attributed": lambda e: bool(e.resource.patients),
    "purpose_allowed": _request("purpose_allowed"),
    "flow_push": lambda e: e.request.flow is Flow.PUSH,
    "flow_zcc": lambda e: e.request.flow is Flow.ZCC,
    "flow_holder": lambda e: e.request.flow is Flow.HOLDER,
    "flow_btg": lambda e: e.request.flow is Flow.BTG,
    "referral_to_requester": referral_to_requester,
    "push_objection": push_objection,
    "active_zcc_contact": active_zcc_contact,
    "consent_source_ok": lambda e: e.facts is not None and e.facts.consent_error is None,
    "holder_consent_permit": holder_consent_permit,
    "btg_refused": btg_refused,
    "btg_emergency_flag": _request("btg_emergency_flag"),
    "btg_reason_given": _request("btg_reason_given"),
    "btg_patient_unable_to_consent": _request("btg_patient_unable_to_consent"),
    "btg_role_allowed": _request("btg_role_allowed"),
    "btg_within_time_box": lambda e: btg_within_time_box(e.request, e.now, e.params),
    "never_disclosed_label": lambda e: bool(e.resource.labels & e.params.never_disclosed_labels),
    "btg_excluded_label": lambda e: bool(e.resource.labels & e.params.btg_excluded_labels),
    "in_emergency_dataset": in_emergency_dataset,
    "ggz_labelled": lambda e: bool(e.resource.labels & e.params.ggz_labels),
    "requester_is_ggz": requester_is_ggz,
    "explicit_ggz_consent": explicit_ggz_consent,
}
