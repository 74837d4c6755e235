"""FHIR Consent -> ConsentRecords, Mitz notification semantics, ad-hoc rules and precedence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.consent.consents import (
    CONSENT_KIND,
    DATA_CATEGORY,
    ORGANIZATION_TYPE,
    URA,
    ConsentQuestion,
    parse_consent,
    verdict,
)
from tests.consent.builders import NOW, PATIENT, consent

CATEGORIES = {"MedicationStatement": "medication"}


def fhir_consent(
    status: str = "active",
    provision_type: str | None = "permit",
    holder: str | None = "N6",
    requester: str | None = "AMB",
    kind: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    actors = []
    if holder:
        actors.append(_actor("CST", ORGANIZATION_TYPE, holder))
    if requester:
        actors.append(_actor("IRCP", ORGANIZATION_TYPE, requester))
    provision: dict[str, Any] = {"actor": actors, "period": {"start": "2025-01-01", "end": "2025-12-31"}}
    if provision_type:
        provision["type"] = provision_type
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "id": "c1",
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "patient": {"reference": f"Patient/{PATIENT}"},
        "provision": provision,
    }
    if kind:
        body["category"] = [{"coding": [{"system": CONSENT_KIND, "code": kind}]}]
    body.update(extra)
    return body


def _actor(role: str, system: str, value: str) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": role}]},
        "reference": {"identifier": {"system": system, "value": value}},
    }


def question(**changes: Any) -> ConsentQuestion:
    values: dict[str, Any] = {
        "patient": PATIENT,
        "at": NOW,
        "purpose": "TREAT",
        "requester_category": "AMB",
        "holder_category": "N6",
        "data_category": "problems",
    }
    values.update(changes)
    return ConsentQuestion(**values)


def test_explicit_permit_is_parsed() -> None:
    [record] = parse_consent(fhir_consent(), CATEGORIES)
    assert (record.kind, record.origin) == ("permit", "explicit")
    assert record.holder_categories == {"N6"} and record.requester_categories == {"AMB"}
    assert record.end is not None and record.end.hour == 23  # a date end means the whole day
    assert verdict([record], question()).kind == "permit"


def test_mitz_no_arrives_inactive_without_type() -> None:
    [record] = parse_consent(fhir_consent(status="inactive", provision_type=None), CATEGORIES)
    assert (record.kind, record.origin) == ("deny", "mitz")


def test_withdrawn_and_draft_consents_say_nothing() -> None:
    assert parse_consent(fhir_consent(status="inactive", provision_type="permit"), CATEGORIES) == []
    assert parse_consent(fhir_consent(status="draft"), CATEGORIES) == []
    assert parse_consent(fhir_consent(status="entered-in-error"), CATEGORIES) == []


def test_treatment_directives_are_not_privacy_consents() -> None:
    directive = fhir_consent()
    directive["scope"] = {"coding": [{"code": "treatment"}]}
    assert parse_consent(directive, CATEGORIES) == []


def test_data_category_from_code_and_class() -> None:
    body = fhir_consent()
    body["provision"]["code"] = [{"coding": [{"system": DATA_CATEGORY, "code": "ggz"}]}]
    body["provision"]["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": "MedicationStatement"}]
    [record] = parse_consent(body, CATEGORIES)
    assert record.data_categories == {"ggz", "medication"}


def test_requester_ura_is_more_specific_than_category() -> None:
    body = fhir_consent(requester=None)
    body["provision"]["actor"].append(_actor("IRCP", URA, "123"))
    [record] = parse_consent(body, CATEGORIES)
    assert record.requester_uras == {"123"}
    assert verdict([record], question(requester_ura="123")).kind == "permit"
    assert verdict([record], question(requester_ura="456")).kind == "none"


def test_adhoc_needs_verifier_and_at_most_72_hours() -> None:
    short = {"start": "2025-06-01T10:00:00Z", "end": "2025-06-03T10:00:00Z"}
    verified = [{"verified": True, "verifiedWith": {"reference": "Practitioner/7"}}]
    ok = fhir_consent(kind="adhoc", verification=verified)
    ok["provision"]["period"] = short
    [record] = parse_consent(ok, CATEGORIES)
    assert record.valid and record.verified_by == "Practitioner/7"
    unverified = fhir_consent(kind="adhoc")
    unverified["provision"]["period"] = short
    assert not parse_consent(unverified, CATEGORIES)[0].valid
    too_long = fhir_consent(kind="adhoc", verification=verified)
    too_long["provision"]["period"] = {"start": "2025-06-01T10:00:00Z", "end": "2025-06-04T10:00:01Z"}
    [long_record] = parse_consent(too_long, CATEGORIES)
    assert not long_record.valid
    assert verdict([long_record], question()).kind == "none"


def test_expired_adhoc_consent_does_not_apply() -> None:
    record = consent(origin="adhoc", start=NOW - timedelta(hours=80), end=NOW - timedelta(hours=10), verified_by="x")
    assert verdict([record], question(requester_category=None, holder_category=None)).kind == "none"


def test_more_specific_wins() -> None:
    general_no = consent("deny", "mitz")
    specific_yes = consent(
        "permit", holder_categories=frozenset({"N6"}), requester_categories=frozenset({"AMB"}), reference="Consent/c2"
    )
    assert verdict([general_no, specific_yes], question()).kind == "permit"
    specific_no = consent("deny", holder_categories=frozenset({"N6"}), requester_uras=frozenset({"9"}))
    assert verdict([specific_yes, specific_no], question(requester_ura="9")).kind == "deny"


def test_at_equal_specificity_the_objection_wins() -> None:
    yes = consent("permit", holder_categories=frozenset({"N6"}))
    no = consent("deny", holder_categories=frozenset({"N6"}), reference="Consent/no")
    result = verdict([yes, no], question())
    assert result.kind == "deny" and result.references == ("Consent/no",)


def test_other_patient_consent_never_applies() -> None:
    assert verdict([consent(patient="someone-else")], question()).kind == "none"


def test_nested_provision_inherits_and_overrides() -> None:
    body = fhir_consent()
    body["provision"]["provision"] = [
        {"type": "deny", "code": [{"coding": [{"system": DATA_CATEGORY, "code": "problems"}]}]}
    ]
    records = parse_consent(body, CATEGORIES)
    assert [r.kind for r in records] == ["permit", "deny"]
    assert records[1].holder_categories == {"N6"}
    assert verdict(records, question()).kind == "deny"  # more specific (data category) deny wins
    assert verdict(records, question(data_category="medication")).kind == "permit"
