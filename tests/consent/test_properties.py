"""Hypothesis properties of the policy and the stage (invariants that must hold for every input)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.consent.model import ConsentRecord, Contact, DisclosedResource, Effect, Flow, PatientFacts, Referral
from gateway.consent.pdp import decide_for_patient
from gateway.consent.stage import ConsentStage
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from tests.consent.builders import NOW, PATIENT, request
from tests.consent.fakes import scope

LABELS = ["R", "V", "N", "PSY", "MH", "BH", "SUD", "ETH", "PSYTHPN", "HIV"]
CATEGORIES = ["demographics", "allergies", "medication", "problems", "results", "reports", "ggz", "other"]
PURPOSES = ["TREAT", "COC", "ETREAT", "BTG", "HRESCH", "HPAYMT", None]
ROLES = ["triagist", "physician", "ggz-triagist", "secretary", "admin", None]
ORG_TYPES = ["N6", "AMB", "G5", "V4", None]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

requests = st.builds(
    lambda purpose, flow, role, org, emergency, reason, unable, contact_ref: request(
        purpose_of_use=purpose,
        flow=Flow.BTG if purpose == "BTG" else flow,
        role=role,
        organization_type=org,
        emergency=emergency,
        emergency_reason=reason,
        patient_unable_to_consent=unable,
        contact_reference=contact_ref,
    ),
    st.sampled_from(PURPOSES),
    st.sampled_from([Flow.PUSH, Flow.ZCC, Flow.HOLDER]),
    st.sampled_from(ROLES),
    st.sampled_from(ORG_TYPES),
    st.booleans(),
    st.sampled_from(["", "reanimation", " "]),
    st.booleans(),
    st.sampled_from([None, "Encounter/e1", "Encounter/other"]),
)

resources = st.builds(
    lambda rtype, labels, category, status, holder: DisclosedResource(
        rtype, "r", frozenset({PATIENT}), True, frozenset(labels), category, holder_category=holder, status=status
    ),
    st.sampled_from(["Condition", "Observation", "MedicationStatement", "Patient", "Composition"]),
    st.sets(st.sampled_from(LABELS), max_size=3),
    st.sampled_from(CATEGORIES),
    st.sampled_from(["active", "final", "stopped", None]),
    st.sampled_from(["N6", "N6", "G5", "AMB", None]),
)

consent_records = st.builds(
    lambda kind, origin, data, holder, requester, valid: ConsentRecord(
        "Consent/x",
        PATIENT,
        kind,
        origin,
        NOW - timedelta(days=1),
        NOW + timedelta(days=1),
        data_categories=frozenset(data),
        holder_categories=frozenset(holder),
        requester_categories=frozenset(requester),
        valid=valid,
    ),
    st.sampled_from(["permit", "deny"]),
    st.sampled_from(["explicit", "adhoc", "mitz", "objection"]),
    st.sets(st.sampled_from(CATEGORIES), max_size=2),
    st.sets(st.sampled_from(ORG_TYPES[:-1]), max_size=2),
    st.sets(st.sampled_from(ORG_TYPES[:-1]), max_size=2),
    st.booleans(),
)

patient_facts = st.builds(
    lambda hours, status, referral_status, consents, error: PatientFacts(
        PATIENT,
        (Contact("Encounter/e1", PATIENT, status, NOW - timedelta(hours=hours), None),),
        (Referral("Task/t", PATIENT, referral_status, frozenset({"00001111"})),),
        tuple(consents),
        error,
    ),
    st.floats(min_value=0, max_value=48),
    st.sampled_from(["in-progress", "cancelled", "finished"]),
    st.sampled_from(["requested", "completed"]),
    st.lists(consent_records, max_size=3),
    st.sampled_from([None, None, "timeout"]),
)


@SETTINGS
@given(requests, resources, patient_facts)
def test_default_deny(policy, req, res, facts) -> None:  # type: ignore[no-untyped-def]
    """With no rules everything is denied; with the real rules a permit always has a legal basis."""
    empty = replace(policy, disclosure_rules=())
    assert decide_for_patient(empty, req, res, facts, NOW).effect is Effect.DENY
    decision = decide_for_patient(policy, req, res, facts, NOW)
    if decision.effect is Effect.PERMIT:
        assert req.purpose_of_use in policy.parameters.allowed_purposes
        assert decision.legal_basis
        assert not res.labels & {"PSYTHPN", "V"}


def _covers_ggz(consent: ConsentRecord, res: DisclosedResource) -> bool:
    return "ggz" in consent.data_categories or (res.holder_category == "G5" and "G5" in consent.holder_categories)


@SETTINGS
@given(requests, resources, patient_facts)
def test_ggz_never_reaches_non_ggz_role_without_explicit_consent(policy, req, res, facts) -> None:  # type: ignore[no-untyped-def]
    req = replace(req, role="triagist", organization_type="N6")
    res = replace(res, labels=res.labels | {"PSY"})
    # An explicit consent covers ggz data only if it names the data category `ggz`, or if the data comes from a
    # ggz holder (G5) and the consent names that holder category. A blanket consent that merely lists G5 next to
    # other holders does not cover ggz-labelled data held elsewhere.
    facts = replace(facts, consents=tuple(c for c in facts.consents if not _covers_ggz(c, res)))
    assert decide_for_patient(policy, req, res, facts, NOW).effect is not Effect.PERMIT


@SETTINGS
@given(requests, resources, patient_facts, st.sampled_from(["R", "V"]))
def test_btg_never_returns_r_or_v(policy, req, res, facts, label) -> None:  # type: ignore[no-untyped-def]
    req = replace(req, purpose_of_use="BTG", flow=Flow.BTG)
    res = replace(res, labels=res.labels | {label})
    assert decide_for_patient(policy, req, res, facts, NOW).effect is not Effect.PERMIT


def _observation(rid: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": f"Patient/{patient}"}}


SHAPES = ["read", "searchset", "history", "transaction-response", "batch-response", "parameters", "document-read"]


def _response(shape: str, resources: list[dict[str, Any]]) -> tuple[Interaction, Result]:
    entries = [{"resource": r} for r in resources]
    if shape == "read":
        return Interaction("read", "GET", "Observation", resources[0]["id"]), Result(200, resource=resources[0])
    if shape == "searchset":
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(entries),
            "entry": [{**e, "search": {"mode": "match"}} for e in entries],
        }
        return Interaction("search-type", "GET", "Observation"), Result(200, resource=bundle)
    if shape == "history":
        bundle = {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(entries),
            "entry": [
                {**e, "request": {"method": "PUT", "url": f"Observation/{e['resource']['id']}"}} for e in entries
            ],
        }
        return Interaction("history-type", "GET", "Observation"), Result(200, resource=bundle)
    if shape in {"transaction-response", "batch-response"}:
        bundle = {
            "resourceType": "Bundle",
            "type": shape,
            "entry": [{**e, "response": {"status": "200 OK"}} for e in entries],
        }
        return Interaction(shape.split("-")[0], "POST"), Result(200, resource=bundle)
    if shape == "parameters":
        output = {"resourceType": "Parameters", "parameter": [{"name": "r", "resource": r} for r in resources]}
        return Interaction("operation", "POST", "Observation", operation="x"), Result(200, resource=output)
    document = {"resourceType": "Bundle", "id": "d", "type": "document", "entry": entries}
    return Interaction("read", "GET", "Bundle", "d"), Result(200, resource=document)


@SETTINGS
@given(st.sampled_from(SHAPES), st.lists(st.booleans(), min_size=1, max_size=6))
def test_a_denied_patient_never_turns_into_data(engine, shape, allowed) -> None:  # type: ignore[no-untyped-def]
    """p1 has an active contact, p2 has none: nothing of p2 may come out, whatever the response shape."""
    resources = [_observation(f"obs-{i}", "p1" if ok else "p2") for i, ok in enumerate(allowed)]
    it, result = _response(shape, resources)
    try:
        out = ConsentStage(engine)(scope(), it, lambda _s, _i: result)
    except FhirError as error:
        assert error.status in {403, 404}
        return
    text = json.dumps(out.body_resource())
    assert "Patient/p2" not in text
    for resource in resources:
        if resource["subject"]["reference"] == "Patient/p1" and shape not in {"document-read", "read"}:
            assert resource["id"] in text  # permitted data still flows
