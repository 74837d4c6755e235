"""The policy decision point: first-match over the policy's rules, default deny.

`decide_request` runs once per interaction before any data is read (purpose, admin-only writes, break-the-glass
prerequisites). `decide` runs for every resource about to be disclosed, once per patient whose compartment holds
it; the most restrictive answer wins (deny > permit-filtered > permit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from gateway.consent.conditions import (
    DISCLOSURE_CONDITIONS,
    REQUEST_CONDITIONS,
    Evaluation,
    RequestTarget,
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

_SEVERITY = {Effect.PERMIT: 0, Effect.PERMIT_FILTERED: 1, Effect.DENY: 2}
MISSING_FACTS = "the facts for this patient were not fetched"


def decide_request(policy: Policy, request: RequestContext, target: RequestTarget) -> Decision:
    def holds(name: str) -> bool:
        return REQUEST_CONDITIONS[name](request, target, policy.parameters)

    return _first_match(policy, policy.request_rules, holds, None)


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


def decide_for_patient(
    policy: Policy,
    request: RequestContext,
    resource: DisclosedResource,
    facts: PatientFacts | None,
    now: datetime,
) -> Decision:
    evaluation = Evaluation(request, resource, facts, now, policy.parameters)
    cache: dict[str, bool] = {}

    def holds(name: str) -> bool:
        if name not in cache:
            cache[name] = DISCLOSURE_CONDITIONS[name](evaluation)
        return cache[name]

    decision = _first_match(policy, policy.disclosure_rules, holds, facts.patient if facts else None)
    return _with_consent_references(decision, evaluation)


def most_restrictive(decisions: list[Decision]) -> Decision | None:
    return max(decisions, key=lambda decision: _SEVERITY[decision.effect]) if decisions else None


def _facts(facts: Mapping[str, PatientFacts], patient: str | None) -> PatientFacts | None:
    if patient is None:
        return None
    return facts.get(patient) or PatientFacts(patient, consent_error=MISSING_FACTS)


def _first_match(
    policy: Policy, rules: tuple[Rule, ...], holds: Callable[[str], bool], patient: str | None
) -> Decision:
    for rule in rules:
        if not all(holds(name) == value for name, value in rule.when.items()):
            continue
        matched_any = [name for name, value in rule.when_any.items() if holds(name) == value]
        if rule.when_any and not matched_any:
            continue
        return _decision(policy, rule, patient, tuple(matched_any))
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
