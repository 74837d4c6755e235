"""`$explain-access`: which rule decides for this client and patient, and why, in Dutch and English.

It never reveals withheld data, nor whether the patient exists: the explanation is computed from the request
and the patient's facts only (an unknown patient simply has no contact and no consent), and it lists the
standing filters that would apply to this client, not what they would remove.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.consent.model import Decision, DisclosedResource, Effect, Flow, PatientFacts, RequestContext
from gateway.consent.pdp import decide_for_patient
from gateway.consent.policy import Policy

EXPLAIN_OPERATION = "explain-access"


def explain_access(
    policy: Policy, request: RequestContext, patient: str, facts: PatientFacts, now: datetime
) -> tuple[Decision, dict[str, Any]]:
    """The decision for the patient's core record (demographics) and its explanation as a Parameters resource."""
    probe = DisclosedResource(
        "Patient",
        patient,
        frozenset({patient}),
        True,
        data_category=policy.parameters.data_categories.get("Patient", "demographics"),
    )
    decision = decide_for_patient(policy, request, probe, facts, now)
    parameters: list[dict[str, Any]] = [
        {"name": "decision", "valueCode": decision.effect.value},
        {"name": "rule", "valueString": decision.rule_id},
        {"name": "policy", "valueString": decision.policy_version},
        {"name": "flow", "valueCode": request.flow.value},
        {
            "name": "reason",
            "part": [
                {"name": "nl", "valueString": decision.reason_nl},
                {"name": "en", "valueString": decision.reason_en},
            ],
        },
    ]
    if decision.legal_basis:
        parameters.append({"name": "legalBasis", "valueString": decision.legal_basis})
    for obligation in decision.obligations:
        parameters.append({"name": "obligation", "valueCode": obligation.code})
    if decision.effect is not Effect.DENY:
        for nl, en in standing_filters(policy, request):
            parameters.append(
                {
                    "name": "filter",
                    "part": [
                        {"name": "nl", "valueString": nl},
                        {"name": "en", "valueString": en},
                    ],
                }
            )
    parameters.append({"name": "breakTheGlassAvailable", "valueBoolean": btg_available(policy, request)})
    return decision, {"resourceType": "Parameters", "parameter": parameters}


def standing_filters(policy: Policy, request: RequestContext) -> list[tuple[str, str]]:
    """The filter rules that apply to this client in general (they say what kind of data, never what data)."""
    rules = {rule.id: rule for rule in policy.disclosure_rules}
    found = []
    names = ["never-disclosed"]
    params = policy.parameters
    ggz = request.organization_type in params.ggz_organization_types or request.role in params.ggz_roles
    if not ggz:
        names.append("ggz-filtered")
    if request.flow is Flow.BTG:
        names.append("btg-outside-emergency-dataset")
    for name in names:
        if name in rules:
            found.append((rules[name].reason_nl, rules[name].reason_en))
    return found


def btg_available(policy: Policy, request: RequestContext) -> bool:
    params = policy.parameters
    return request.flow is not Flow.BTG and "BTG" in params.allowed_purposes and request.role in params.btg_roles


def btg_hint(policy: Policy, request: RequestContext) -> str | None:
    if not btg_available(policy, request):
        return None
    return (
        "In an emergency where the patient cannot consent, break-the-glass (purpose BTG) can release the "
        "emergency dataset / In een noodsituatie waarin de patiënt geen toestemming kan geven, kan "
        "break-the-glass (doel BTG) de noodset vrijgeven"
    )
