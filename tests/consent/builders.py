"""Builders for PDP inputs, shared by the consent tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.consent.model import (
    ConsentRecord,
    Contact,
    DisclosedResource,
    Flow,
    PatientFacts,
    Referral,
    RequestContext,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PATIENT = "p1"
URA_HAP = "00001111"
URA_GGZ = "00002222"


def request(**changes: Any) -> RequestContext:
    base = RequestContext(
        client_id="zcc-app",
        ura=URA_HAP,
        organization_type="N6",
        role="triagist",
        purpose_of_use="TREAT",
        flow=Flow.ZCC,
        scopes=frozenset({"user/*.read"}),
        user_id="uzi-1",
        interaction="read",
    )
    return replace(base, **changes)


def btg_request(**changes: Any) -> RequestContext:
    values: dict[str, Any] = {
        "purpose_of_use": "BTG",
        "flow": Flow.BTG,
        "emergency": True,
        "emergency_reason": "unconscious patient, suspected overdose",
        "patient_unable_to_consent": True,
    }
    return request(**{**values, **changes})


def resource(
    resource_type: str = "Condition",
    labels: frozenset[str] = frozenset(),
    category: str = "problems",
    status: str | None = "active",
    patients: frozenset[str] = frozenset({PATIENT}),
    holder: str | None = "N6",
) -> DisclosedResource:
    return DisclosedResource(
        resource_type, "r1", patients, True, labels, category, holder_category=holder, status=status
    )


def contact(hours_ago: float = 1, status: str = "in-progress", reference: str = "Encounter/e1") -> Contact:
    return Contact(reference, PATIENT, status, NOW - timedelta(hours=hours_ago), None)


def referral(ura: str = URA_HAP, status: str = "requested") -> Referral:
    return Referral("Task/t1", PATIENT, status, frozenset({ura}))


def consent(kind: str = "permit", origin: str = "explicit", **changes: Any) -> ConsentRecord:
    base = ConsentRecord(
        reference="Consent/c1",
        patient=PATIENT,
        kind=kind,
        origin=origin,
        start=NOW - timedelta(days=30),
        end=NOW + timedelta(days=30),
    )
    return replace(base, **changes)


def facts(*, contacts=(), referrals=(), consents=(), error: str | None = None) -> PatientFacts:  # type: ignore[no-untyped-def]
    return PatientFacts(PATIENT, tuple(contacts), tuple(referrals), tuple(consents), error)
