"""The decision table: every rule, both sides of every condition, as a pure-function matrix."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.consent.conditions import RequestTarget
from gateway.consent.model import DENY_AS_404, Contact, DisclosedResource, Effect, Flow, PatientFacts
from gateway.consent.pdp import decide, decide_for_patient, decide_request
from tests.consent.builders import (
    NOW,
    PATIENT,
    URA_GGZ,
    btg_request,
    consent,
    contact,
    facts,
    referral,
    request,
    resource,
)

PERMIT, FILTERED, DENY = Effect.PERMIT, Effect.PERMIT_FILTERED, Effect.DENY
ACTIVE = facts(contacts=[contact()])
PUSH = request(flow=Flow.PUSH)
HOLDER = request(flow=Flow.HOLDER)
GGZ = frozenset({"PSY"})
HOLDER_PERMIT = consent(requester_categories=frozenset({"N6"}), holder_categories=frozenset({"N6"}))

CASES = [
    # purpose of use
    ("purpose TREAT", request(), resource(), ACTIVE, PERMIT, "zcc-treatment"),
    ("purpose COC", request(purpose_of_use="COC"), resource(), ACTIVE, PERMIT, "zcc-treatment"),
    ("purpose ETREAT", request(purpose_of_use="ETREAT"), resource(), ACTIVE, PERMIT, "zcc-treatment"),
    ("purpose research", request(purpose_of_use="HRESCH"), resource(), ACTIVE, DENY, "purpose-of-use"),
    ("purpose payment", request(purpose_of_use="HPAYMT"), resource(), ACTIVE, DENY, "purpose-of-use"),
    ("no purpose", request(purpose_of_use=None), resource(), ACTIVE, DENY, "purpose-of-use"),
    # non-patient and unattributed data
    (
        "organisation",
        request(purpose_of_use=None),
        DisclosedResource("Organization", "o", frozenset(), False),
        None,
        PERMIT,
        "non-patient-data",
    ),
    (
        "binary without patient",
        request(),
        DisclosedResource("Binary", "b", frozenset(), True),
        None,
        DENY,
        "unattributed-patient-data",
    ),
    # pull within the zcc
    ("zcc contact 1h ago", request(), resource(), ACTIVE, PERMIT, "zcc-treatment"),
    ("zcc no contact", request(), resource(), facts(), DENY, "zcc-no-contact"),
    ("zcc contact 25h ago", request(), resource(), facts(contacts=[contact(hours_ago=25)]), DENY, "zcc-no-contact"),
    (
        "zcc contact cancelled",
        request(),
        resource(),
        facts(contacts=[contact(status="cancelled")]),
        DENY,
        "zcc-no-contact",
    ),
    (
        "zcc named contact matches",
        request(contact_reference="Encounter/e1"),
        resource(),
        ACTIVE,
        PERMIT,
        "zcc-treatment",
    ),
    (
        "zcc named contact of other patient (IDOR)",
        request(contact_reference="Encounter/of-patient-b"),
        resource(),
        ACTIVE,
        DENY,
        "zcc-no-contact",
    ),
    ("zcc ggz data, non-ggz role", request(), resource(labels=GGZ), ACTIVE, FILTERED, "ggz-filtered"),
    ("zcc ggz data, ggz role", request(role="ggz-triagist"), resource(labels=GGZ), ACTIVE, PERMIT, "zcc-treatment"),
    ("zcc R label, non-ggz", request(), resource(labels=frozenset({"R"})), ACTIVE, FILTERED, "ggz-filtered"),
    (
        "zcc ggz data, explicit ggz consent",
        request(),
        resource(labels=GGZ),
        facts(contacts=[contact()], consents=[consent(data_categories=frozenset({"ggz"}))]),
        PERMIT,
        "zcc-treatment",
    ),
    (
        "zcc PSYTHPN even for ggz",
        request(role="ggz-triagist"),
        resource(labels=frozenset({"PSYTHPN"})),
        ACTIVE,
        FILTERED,
        "never-disclosed",
    ),
    ("zcc V label", request(), resource(labels=frozenset({"V"})), ACTIVE, FILTERED, "never-disclosed"),
    # push (WGBO)
    ("push with referral", PUSH, resource(), facts(referrals=[referral()]), PERMIT, "push-wgbo"),
    ("push without referral", PUSH, resource(), facts(), DENY, "push-no-referral"),
    ("push referral to other org", PUSH, resource(), facts(referrals=[referral(ura="999")]), DENY, "push-no-referral"),
    (
        "push referral completed",
        PUSH,
        resource(),
        facts(referrals=[referral(status="completed")]),
        DENY,
        "push-no-referral",
    ),
    (
        "push objection",
        PUSH,
        resource(),
        facts(referrals=[referral()], consents=[consent("deny", "objection")]),
        DENY,
        "push-objection",
    ),
    (
        "push: Mitz no does not block WGBO",
        PUSH,
        resource(),
        facts(referrals=[referral()], consents=[consent("deny", "mitz")]),
        PERMIT,
        "push-wgbo",
    ),
    ("push ggz to non-ggz", PUSH, resource(labels=GGZ), facts(referrals=[referral()]), FILTERED, "ggz-filtered"),
    (
        "push ggz to ggz org",
        replace(PUSH, ura=URA_GGZ, organization_type="G5", role="psychiatrist"),
        resource(labels=GGZ),
        facts(referrals=[referral(ura=URA_GGZ)]),
        PERMIT,
        "push-wgbo",
    ),
    (
        "push ggz held by non-ggz holder, blanket consent also naming a ggz holder",
        PUSH,
        resource(labels=GGZ, category="demographics"),
        facts(
            contacts=[contact()],
            referrals=[referral()],
            consents=[consent(holder_categories=frozenset({"G5", "N6"}))],
        ),
        FILTERED,
        "ggz-filtered",
    ),
    (
        "push ggz held by ggz holder, consent naming that ggz holder",
        PUSH,
        resource(labels=GGZ, holder="G5"),
        facts(referrals=[referral()], consents=[consent(holder_categories=frozenset({"G5"}))]),
        PERMIT,
        "push-wgbo",
    ),
    (
        "push ggz held by ggz holder, blanket consent without ggz",
        PUSH,
        resource(labels=GGZ, holder="G5"),
        facts(referrals=[referral()], consents=[consent()]),
        FILTERED,
        "ggz-filtered",
    ),
    (
        "zcc ggz data, ggz consent but consent source down",
        request(),
        resource(labels=GGZ),
        replace(facts(contacts=[contact()], consents=[consent(data_categories=frozenset({"ggz"}))]), consent_error="x"),
        FILTERED,
        "ggz-filtered",
    ),
    # pull from the data holder (Mitz)
    ("holder explicit permit", HOLDER, resource(), facts(consents=[HOLDER_PERMIT]), PERMIT, "holder-consent"),
    ("holder no consent", HOLDER, resource(), facts(), DENY, "holder-no-consent"),
    (
        "holder permit for other requester category",
        HOLDER,
        resource(),
        facts(consents=[replace(HOLDER_PERMIT, requester_categories=frozenset({"V4"}))]),
        DENY,
        "holder-no-consent",
    ),
    (
        "holder permit for other data category",
        HOLDER,
        resource(),
        facts(consents=[replace(HOLDER_PERMIT, data_categories=frozenset({"medication"}))]),
        DENY,
        "holder-no-consent",
    ),
    (
        "holder permit expired",
        HOLDER,
        resource(),
        facts(consents=[replace(HOLDER_PERMIT, end=NOW - timedelta(seconds=1))]),
        DENY,
        "holder-no-consent",
    ),
    ("holder Mitz no", HOLDER, resource(), facts(consents=[consent("deny", "mitz")]), DENY, "holder-no-consent"),
    (
        "holder consent source error",
        HOLDER,
        resource(),
        facts(consents=[HOLDER_PERMIT], error="timeout"),
        DENY,
        "holder-consent-unavailable",
    ),
    (
        "holder invalid ad-hoc",
        HOLDER,
        resource(),
        facts(consents=[consent(origin="adhoc", valid=False)]),
        DENY,
        "holder-no-consent",
    ),
    (
        "holder valid ad-hoc",
        HOLDER,
        resource(),
        facts(
            consents=[
                consent(
                    origin="adhoc",
                    start=NOW - timedelta(hours=1),
                    end=NOW + timedelta(hours=2),
                    verified_by="Practitioner/1",
                )
            ]
        ),
        PERMIT,
        "holder-consent",
    ),
    (
        "holder ggz without ggz consent",
        HOLDER,
        resource(labels=GGZ),
        facts(consents=[HOLDER_PERMIT]),
        FILTERED,
        "ggz-filtered",
    ),
    # break the glass
    ("btg complete", btg_request(), resource(), ACTIVE, PERMIT, "btg-emergency"),
    ("btg without reason", btg_request(emergency_reason=" "), resource(), ACTIVE, DENY, "btg-request-incomplete"),
    ("btg without emergency flag", btg_request(emergency=False), resource(), ACTIVE, DENY, "btg-request-incomplete"),
    (
        "btg patient able to consent",
        btg_request(patient_unable_to_consent=False),
        resource(),
        ACTIVE,
        DENY,
        "btg-request-incomplete",
    ),
    ("btg role not allowed", btg_request(role="secretary"), resource(), ACTIVE, DENY, "btg-request-incomplete"),
    (
        "btg time box expired",
        btg_request(btg_started_at=NOW - timedelta(hours=5)),
        resource(),
        ACTIVE,
        DENY,
        "btg-request-incomplete",
    ),
    (
        "btg within time box",
        btg_request(btg_started_at=NOW - timedelta(hours=3)),
        resource(),
        ACTIVE,
        PERMIT,
        "btg-emergency",
    ),
    ("btg without contact", btg_request(), resource(), facts(), DENY, "btg-no-contact"),
    (
        "btg after refusal",
        btg_request(),
        resource(),
        facts(contacts=[contact()], consents=[consent("deny")]),
        DENY,
        "btg-refused",
    ),
    (
        "btg refusal limited to research",
        btg_request(),
        resource(),
        facts(contacts=[contact()], consents=[consent("deny", purposes=frozenset({"HRESCH"}))]),
        PERMIT,
        "btg-emergency",
    ),
    (
        "btg Mitz no is not a refusal",
        btg_request(),
        resource(),
        facts(contacts=[contact()], consents=[consent("deny", "mitz")]),
        PERMIT,
        "btg-emergency",
    ),
    (
        "btg outside dataset",
        btg_request(),
        resource("Observation", category="results"),
        ACTIVE,
        FILTERED,
        "btg-outside-emergency-dataset",
    ),
    (
        "btg stopped medication",
        btg_request(),
        resource("MedicationStatement", category="medication", status="stopped"),
        ACTIVE,
        FILTERED,
        "btg-outside-emergency-dataset",
    ),
    (
        "btg active medication",
        btg_request(),
        resource("MedicationStatement", category="medication"),
        ACTIVE,
        PERMIT,
        "btg-emergency",
    ),
    (
        "btg R label",
        btg_request(role="physician"),
        resource(labels=frozenset({"R"})),
        ACTIVE,
        FILTERED,
        "btg-outside-emergency-dataset",
    ),
    ("btg V label", btg_request(), resource(labels=frozenset({"V"})), ACTIVE, FILTERED, "never-disclosed"),
]


@pytest.mark.parametrize(
    ("req", "res", "patient_facts", "effect", "rule"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(policy, req, res, patient_facts, effect, rule) -> None:  # type: ignore[no-untyped-def]
    decision = decide_for_patient(policy, req, res, patient_facts, NOW)
    assert (decision.effect, decision.rule_id) == (effect, rule)
    assert decision.reason_nl and decision.reason_en
    assert decision.policy_version == "zcc-gateway-disclosure-policy|1.1.0"


def test_every_disclosure_rule_is_exercised(policy) -> None:  # type: ignore[no-untyped-def]
    covered = {case[5] for case in CASES}
    assert {rule.id for rule in policy.disclosure_rules} <= covered


def test_deny_as_404_where_existence_must_not_leak(policy) -> None:  # type: ignore[no-untyped-def]
    no_contact = decide_for_patient(policy, request(), resource(), facts(), NOW)
    no_consent = decide_for_patient(policy, HOLDER, resource(), facts(), NOW)
    objection = decide_for_patient(
        policy, PUSH, resource(), facts(referrals=[referral()], consents=[consent("deny", "objection")]), NOW
    )
    assert no_contact.has(DENY_AS_404) and no_consent.has(DENY_AS_404)
    assert not objection.has(DENY_AS_404)
    assert objection.consent_references == ("Consent/c1",)


def test_btg_obligations(policy) -> None:  # type: ignore[no-untyped-def]
    decision = decide_for_patient(policy, btg_request(), resource(), ACTIVE, NOW)
    codes = {obligation.code: obligation.detail for obligation in decision.obligations}
    assert {"btg-audit", "review", "time-box", "minimum-dataset"} <= set(codes)
    assert codes["time-box"] == "PT4H"


def test_unmet_btg_conditions_are_named(policy) -> None:  # type: ignore[no-untyped-def]
    decision = decide_for_patient(policy, btg_request(emergency_reason="", role="secretary"), resource(), ACTIVE, NOW)
    assert set(decision.unmet) == {"btg_reason_given", "btg_role_allowed"}
    assert "no reason given" in decision.reason_en and "geen reden opgegeven" in decision.reason_nl


def test_multi_patient_resource_takes_most_restrictive(policy) -> None:  # type: ignore[no-untyped-def]
    shared = resource(patients=frozenset({PATIENT, "p2"}))
    decision = decide(policy, request(), shared, {PATIENT: ACTIVE}, NOW)  # no facts for p2: fail closed
    assert decision.effect is DENY and decision.patient == "p2"


def test_foreign_patient_reference_is_denied(policy) -> None:  # type: ignore[no-untyped-def]
    foreign = resource(patients=frozenset({"http://elsewhere/fhir/Patient/p1"}))
    assert decide(policy, request(), foreign, {PATIENT: ACTIVE}, NOW).effect is DENY


REQUEST_CASES = [
    (
        "capabilities",
        request(interaction="capabilities", purpose_of_use=None),
        None,
        False,
        False,
        PERMIT,
        "req-infrastructure",
    ),
    (
        "consent write by non-admin",
        request(interaction="create", is_write=True),
        "Consent",
        True,
        True,
        DENY,
        "req-protected-write",
    ),
    (
        "consent write by admin",
        request(interaction="create", is_write=True, is_admin=True),
        "Consent",
        True,
        True,
        PERMIT,
        "req-write",
    ),
    ("ordinary write", request(interaction="create", is_write=True), "Observation", True, False, PERMIT, "req-write"),
    (
        "AuditEvent update even by admin",
        request(interaction="update", is_write=True, is_admin=True),
        "AuditEvent",
        True,
        True,
        DENY,
        "req-immutable",
    ),
    (
        "AuditEvent delete",
        request(interaction="delete", is_write=True, is_admin=True),
        "AuditEvent",
        True,
        True,
        DENY,
        "req-immutable",
    ),
    (
        "non-patient search without purpose",
        request(interaction="search-type", purpose_of_use=None),
        "Slot",
        False,
        False,
        PERMIT,
        "req-non-patient-data",
    ),
    (
        "patient search, purpose research",
        request(interaction="search-type", purpose_of_use="HRESCH"),
        "Observation",
        True,
        False,
        DENY,
        "req-purpose",
    ),
    (
        "patient search, TREAT",
        request(interaction="search-type"),
        "Observation",
        True,
        False,
        PERMIT,
        "req-patient-data",
    ),
    ("btg complete", btg_request(interaction="read"), "Observation", True, False, PERMIT, "req-patient-data"),
    (
        "btg without reason",
        btg_request(interaction="read", emergency_reason=""),
        "Observation",
        True,
        False,
        DENY,
        "req-btg-incomplete",
    ),
]


@pytest.mark.parametrize(
    ("req", "resource_type", "patient_target", "protected", "effect", "rule"),
    [case[1:] for case in REQUEST_CASES],
    ids=[case[0] for case in REQUEST_CASES],
)
def test_request_rules(policy, req, resource_type, patient_target, protected, effect, rule) -> None:  # type: ignore[no-untyped-def]
    decision = decide_request(policy, req, RequestTarget(resource_type, patient_target, protected, NOW))
    assert (decision.effect, decision.rule_id) == (effect, rule)


def test_a_decision_is_made_once_per_rule_patient_and_unmet_conditions_and_shared(policy) -> None:  # type: ignore[no-untyped-def]
    first = decide(policy, request(), resource(), {PATIENT: ACTIVE}, NOW)
    again = decide(policy, request(purpose_of_use="COC"), replace(resource(), id="o2"), {PATIENT: ACTIVE}, NOW)
    assert (first.rule_id, first.effect) == ("zcc-treatment", PERMIT) and again is first  # the same value
    p2 = PatientFacts("p2", (Contact("Encounter/e2", "p2", "in-progress", NOW - timedelta(hours=1), None),))
    other = decide(policy, request(), resource(patients=frozenset({"p2"})), {"p2": p2}, NOW)
    assert other is not first and other.patient == "p2" and other.rule_id == first.rule_id
    denied = decide(policy, request(), resource(), {PATIENT: facts()}, NOW)
    assert denied.effect is not PERMIT and denied is not first
    reloaded = replace(policy, version="reloaded")  # another policy object: its own decisions
    made = decide(reloaded, request(), resource(), {PATIENT: ACTIVE}, NOW)
    assert made is not first and made.policy_version.endswith("|reloaded")
    consented = decide(policy, HOLDER, resource(), {PATIENT: facts(consents=[HOLDER_PERMIT])}, NOW)
    assert consented.consent_references  # the consulted Consents are named on every such decision
