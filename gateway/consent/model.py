"""The vocabulary of the policy decision point: what goes in (a request, a resource, the patient's facts) and
what comes out (a Decision with obligations). Plain frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Effect(StrEnum):
    PERMIT = "permit"
    PERMIT_FILTERED = "permit-filtered"  # the request may see the patient, but this resource is withheld/redacted
    DENY = "deny"


class Flow(StrEnum):
    PUSH = "push"  # referral/handover to a named, directly involved organisation (WGBO)
    ZCC = "zcc"  # a zcc triagist reading what the zcc holds
    HOLDER = "holder"  # pull from the data holder's records (Wabvpz 15a, Mitz consent)
    BTG = "btg"  # break the glass (GDPR 9(2)(c))


# Obligation codes: the stage and the audit stage act on these.
AUDIT = "audit"
CONSENT_AUDIT = "consent-audit"
BTG_AUDIT = "btg-audit"
REVIEW = "review"
TIME_BOX = "time-box"
MINIMUM_DATASET = "minimum-dataset"
REDACTION = "redaction"
DENY_AS_404 = "deny-as-404"
OBLIGATIONS = frozenset({AUDIT, CONSENT_AUDIT, BTG_AUDIT, REVIEW, TIME_BOX, MINIMUM_DATASET, REDACTION, DENY_AS_404})


@dataclass(frozen=True)
class RequestContext:
    """Who asks, for what, in which flow. Built once per HTTP request from the authenticated identity."""

    client_id: str
    ura: str | None
    organization_type: str | None
    role: str | None
    purpose_of_use: str | None
    flow: Flow
    scopes: frozenset[str] = frozenset()
    user_id: str | None = None
    interaction: str = "read"  # gateway.fhir.interaction kinds
    is_write: bool = False
    is_admin: bool = False
    contact_reference: str | None = None  # the zcc contact the request belongs to, e.g. "Encounter/123"
    referral_reference: str | None = None  # for push: the Task/ServiceRequest/Communication it answers
    emergency: bool = False
    emergency_reason: str = ""
    patient_unable_to_consent: bool = False
    btg_started_at: datetime | None = None
    token_jti: str | None = None


@dataclass(frozen=True)
class DisclosedResource:
    """What the PDP needs to know about one resource about to leave the gateway (never the data itself)."""

    resource_type: str
    id: str | None
    patients: frozenset[str]  # patient ids whose compartment holds the resource
    patient_data: bool  # True when the resource is about a patient (even if no patient could be found)
    labels: frozenset[str] = frozenset()  # security label codes (confidentiality, sensitivity, handling)
    data_category: str = "other"
    holder_category: str | None = None  # organisation type of the data holder (source)
    holder_ura: str | None = None
    status: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}" if self.id else self.resource_type

    @property
    def shape(self) -> tuple[object, ...]:
        """Everything a decision depends on — all but the id (cheaper as a cache key than a copy)."""
        return (self.resource_type, self.patients, self.patient_data, self.labels, self.data_category,
                self.holder_category, self.holder_ura, self.status)

    @staticmethod
    def shape_patients(shape: tuple[object, ...]) -> frozenset[str]:
        """The `patients` of a description with this `shape`."""
        return shape[1]  # type: ignore[return-value]

    @classmethod
    def from_shape(cls, shape: tuple[object, ...], resource_id: str | None) -> DisclosedResource:
        """The description with this `shape` (see `shape`) and id."""
        resource_type, patients, patient_data, labels, data_category, holder_category, holder_ura, status = shape
        return cls(resource_type, resource_id, patients, patient_data, labels, data_category,  # type: ignore[arg-type]
                   holder_category, holder_ura, status)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Contact:
    """A zcc contact (Encounter, EpisodeOfCare, Task) for the patient."""

    reference: str
    patient: str
    status: str
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Referral:
    """A Task / ServiceRequest / Communication for the patient addressed to organisations (push)."""

    reference: str
    patient: str
    status: str
    recipient_uras: frozenset[str]


@dataclass(frozen=True)
class ConsentRecord:
    """One privacy Consent, normalised (see gateway.consent.consents)."""

    reference: str
    patient: str
    kind: str  # "permit" | "deny"
    origin: str  # "explicit" | "adhoc" | "mitz" | "objection"
    start: datetime | None = None
    end: datetime | None = None
    purposes: frozenset[str] = frozenset()
    holder_categories: frozenset[str] = frozenset()
    holder_uras: frozenset[str] = frozenset()
    requester_categories: frozenset[str] = frozenset()
    requester_uras: frozenset[str] = frozenset()
    data_categories: frozenset[str] = frozenset()
    verified_by: str | None = None  # ad-hoc consent: who verified it on the spot
    valid: bool = True  # False for an ad-hoc consent that breaks the rules (too long, unverified)


@dataclass(frozen=True)
class PatientFacts:
    """Everything the PDP knows about one patient's situation, fetched by gateway.consent.facts."""

    patient: str
    contacts: tuple[Contact, ...] = ()
    referrals: tuple[Referral, ...] = ()
    consents: tuple[ConsentRecord, ...] = ()
    consent_error: str | None = None  # the consent source failed: fail closed


@dataclass(frozen=True)
class Obligation:
    code: str
    detail: str = ""  # e.g. "PT4H" for a time box


@dataclass(frozen=True)
class Decision:
    effect: Effect
    rule_id: str
    reason_nl: str
    reason_en: str
    legal_basis: str = ""
    obligations: tuple[Obligation, ...] = ()
    consent_references: tuple[str, ...] = ()
    policy_version: str = ""
    patient: str | None = None
    unmet: tuple[str, ...] = field(default=())  # the conditions that made a deny (for reasons and audit)

    def has(self, code: str) -> bool:
        return any(obligation.code == code for obligation in self.obligations)

    @property
    def permitted(self) -> bool:
        return self.effect is Effect.PERMIT
