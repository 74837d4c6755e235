"""The policy decision point: first-match over the policy's rules, default deny.

`decide_request` runs once per interaction before any data is read (purpose, admin-only writes, break-the-glass
prerequisites). `decide` runs for every resource about to be disclosed, once per patient whose compartment holds
it; the most restrictive answer wins (deny > permit-filtered > permit).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from gateway.consent.conditions import (
    DISCLOSURE_CONDITIONS,
    REQUEST_CONDITIONS,
    Evaluation,
    RequestTarget,
    instants,
)
from gateway.consent.model import (
    TIME_BOX,
    Decision,
    DisclosedResource,
    Effect,
    Obligation,
    PatientFacts,
    RequestContext,
)
from gateway.consent.policy import Policy, Rule
from gateway.memo import IdentityMemo

_SEVERITY = {Effect.PERMIT: 0, Effect.PERMIT_FILTERED: 1, Effect.DENY: 2}
MISSING_FACTS = "the facts for this patient were not fetched"
_DECISIONS: IdentityMemo[Decision] = IdentityMemo(16384)
_SHAPE_DECISIONS: IdentityMemo[Decision] = IdentityMemo(16384)  # see decide_shape
_REQUEST_DECISIONS: IdentityMemo[Decision] = IdentityMemo(4096)  # see decide_request
_INSTANTS: IdentityMemo[tuple[datetime, ...]] = IdentityMemo(16384)


def decide_request(policy: Policy, request: RequestContext, target: RequestTarget) -> Decision:
    """The request rules' decision, remembered as `decide_shape`'s: per policy, request context, target (but its
    time) and place of the target's time among the request context's `instants`."""
    moments = _INSTANTS.made((None, request, policy), (), instants, None, request, policy.parameters)
    now = target.now
    return _REQUEST_DECISIONS.made(
        (policy, request), (*target.timeless, bisect_left(moments, now), bisect_right(moments, now)),
        _decide_request, policy, request, target,
    )


def _decide_request(policy: Policy, request: RequestContext, target: RequestTarget) -> Decision:
    params = policy.parameters
    return _first_match(policy, policy.request_rules, lambda name: REQUEST_CONDITIONS[name](request, target, params),
                        None)


def decide(
    policy: Policy,
    request: RequestContext,
    resource: DisclosedResource,
    facts: Mapping[str, PatientFacts],
    now: datetime,
) -> Decision:
    patients = sorted(resource.patients) or [None]
    decisions = [decide_for_patient(policy, request, resource, _facts(facts, patient), now) for patient in patients]
    return max(decisions, key=lambda decision: _SEVERITY[decision.effect])


def decide_shape(
    policy: Policy,
    request: RequestContext,
    shape: tuple[object, ...],
    facts: Mapping[str, PatientFacts],
    now: datetime,
) -> Decision:
    """`decide` for a resource of this shape (`DisclosedResource.shape`: all a decision depends on of a resource),
    remembered across requests. A decision is a pure function of the policy, the request context, the shape, the
    facts of the resource's patients and `now`, and it depends on `now` only through comparisons with the
    `instants` of those facts and that request context: wherever `now` falls among them (between two, or on one),
    the decision is the same. So it is made once per policy, request context and facts objects (facts are new
    objects whenever the store changed: gateway.consent.facts), shape and place of `now`, and shared (a Decision
    is immutable). Patients without fetched facts: decided afresh."""
    found = [facts.get(patient) for patient in sorted(DisclosedResource.shape_patients(shape))]
    if None in found:
        return _decide_shaped(policy, request, shape, facts, now)
    places = []
    for one in found or [None]:
        moments = _INSTANTS.made((one, request, policy), (), instants, one, request, policy.parameters)
        places.append((bisect_left(moments, now), bisect_right(moments, now)))
    return _SHAPE_DECISIONS.made((policy, request, *found), (shape, *places),
                                 _decide_shaped, policy, request, shape, facts, now)


def _decide_shaped(
    policy: Policy, request: RequestContext, shape: tuple[object, ...], facts: Mapping[str, PatientFacts],
    now: datetime,
) -> Decision:
    return decide(policy, request, DisclosedResource.from_shape(shape, None), facts, now)


def decide_for_patient(
    policy: Policy,
    request: RequestContext,
    resource: DisclosedResource,
    facts: PatientFacts | None,
    now: datetime,
) -> Decision:
    evaluation = Evaluation(request, resource, facts, now, policy.parameters)
    decision = _first_match(
        policy, policy.disclosure_rules, lambda name: DISCLOSURE_CONDITIONS[name](evaluation),
        facts.patient if facts else None,
    )
    return _with_consent_references(decision, evaluation)


def most_restrictive(decisions: list[Decision]) -> Decision | None:
    return max(decisions, key=lambda decision: _SEVERITY[decision.effect]) if decisions else None


def _facts(facts: Mapping[str, PatientFacts], patient: str | None) -> PatientFacts | None:
    if patient is None:
        return None
    return facts.get(patient) or PatientFacts(patient, consent_error=MISSING_FACTS)


def _first_match(
    policy: Policy, rules: tuple[Rule, ...], condition: Callable[[str], bool], patient: str | None
) -> Decision:
    """The first rule whose conditions all hold (and one of its `when_any`, if it has those). Each condition is
    evaluated at most once per decision, and only when a rule reaches it (conditions are pure; a consent
    condition notes the Consents it consulted once)."""
    known: dict[str, bool] = {}

    def holds(name: str) -> bool:
        held = known.get(name)
        if held is None:
            held = known[name] = bool(condition(name))
        return held

    for rule in rules:
        for name, value in rule.conditions:  # holds(), inlined: this loop runs ~20 times per decision
            held = known.get(name)
            if held is None:
                held = known[name] = bool(condition(name))
            if held != value:
                break
        else:
            alternatives = rule.alternatives
            matched_any = tuple(name for name, value in alternatives if holds(name) == value)
            if alternatives and not matched_any:
                continue
            # the decision is an immutable value of these: made once, shared by every decision alike (a page's,
            # and later requests')
            return _DECISIONS.made((policy, rule), (patient, matched_any),
                                   _decision, policy, rule, patient, matched_any)
    return Decision(
        effect=Effect.DENY,
        rule_id=policy.default_rule_id,
        reason_nl=policy.default_reason_nl,
        reason_en=policy.default_reason_en,
        policy_version=policy.label,
        patient=patient,
    )


def _decision(policy: Policy, rule: Rule, patient: str | None, unmet: tuple[str, ...]) -> Decision:
    obligations = []
    for code in rule.obligations:
        detail = f"PT{policy.parameters.btg_time_box_hours:g}H" if code == TIME_BOX else ""
        obligations.append(Obligation(code, detail))
    return Decision(
        effect=rule.effect,
        rule_id=rule.id,
        reason_nl=_with_unmet(rule.reason_nl, unmet, policy, "nl"),
        reason_en=_with_unmet(rule.reason_en, unmet, policy, "en"),
        legal_basis=rule.legal_basis,
        obligations=tuple(obligations),
        policy_version=policy.label,
        patient=patient,
        unmet=unmet,
    )


def _with_unmet(reason: str, unmet: tuple[str, ...], policy: Policy, language: str) -> str:
    labels = [policy.condition_labels.get(name, {}).get(language, name) for name in unmet]
    return f"{reason} ({'; '.join(labels)})" if labels else reason


def _with_consent_references(decision: Decision, evaluation: Evaluation) -> Decision:
    """Name the Consent resources that answered a condition on the deciding path (never their content)."""
    if not evaluation.consulted:
        return decision
    return replace(decision, consent_references=tuple(dict.fromkeys(evaluation.consulted)))
