"""ConsentEngine: the consent pieces assembled once per server (policy, compartment, facts source, clock), plus
the per-request bookkeeping kept in `RequestScope.state` (request context, facts cache, decision records that
the audit stage reads)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.consent.compartment import DefinitionSource, PatientCompartment
from gateway.consent.describe import Describer
from gateway.consent.facts import ConsentSource, FactsSource, fetch_facts
from gateway.consent.model import Decision, DisclosedResource, PatientFacts, RequestContext
from gateway.consent.policy import Policy, load_policy
from gateway.consent.request import CONTEXT_HEADERS, request_context
from gateway.consent.timeutil import utc_now
from gateway.ids import uuid7
from gateway.memo import IdentityMemo

STATE_CONTEXT = "consent.context"
STATE_FACTS = "consent.facts"
STATE_DECISION_ID = "consent.decision_id"
STATE_RECORDS = "consent.records"  # {id(interaction): InteractionRecord}
DECISION_HEADER = "X-Zcc-Decision-Id"
SUPPRESSED_HEADER = "X-Zcc-Suppressed"
BTG_EXPIRES_HEADER = "X-Zcc-Btg-Expires"
MAX_REMEMBERED_CONTEXTS = 4096


@dataclass
class InteractionRecord:
    """What the consent stage decided for one interaction; the audit stage turns it into AuditEvents."""

    decision_id: str
    request: RequestContext
    request_decision: Decision | None = None
    decisions: list[tuple[str, Decision]] = field(default_factory=list)  # (resource reference, decision)
    released: list[str] = field(default_factory=list)  # references of resources that left the gateway
    withheld: int = 0
    refusal: str | None = None  # a refused query shape
    patient_data_target: bool = False
    # Descriptions a handler already made of resources it puts in its response (the summary screen): id(resource)
    # -> (resource, description). The stage still decides every resource; it only skips describing it again. The
    # resource is kept so that the id cannot be reused by another object while the record lives.
    described: dict[int, tuple[dict[str, Any], DisclosedResource]] = field(default_factory=dict)
    # Decisions that handler reached for this request with this engine, context and facts, by resource shape
    # (DisclosedResource.shape): the stage takes them as its own instead of deciding the same shape again.
    decided: dict[tuple[object, ...], Decision] = field(default_factory=dict)

    @property
    def patients(self) -> list[str]:
        return sorted({d.patient for _, d in self.decisions if d.patient})


@dataclass
class ConsentEngine:
    policy: Policy
    describer: Describer
    facts_source: FactsSource
    clock: Callable[[], datetime] = utc_now
    # request contexts made, by (id of the identity, interaction kind, values of CONTEXT_HEADERS): see _made_context
    _contexts: IdentityMemo[RequestContext] = field(
        default_factory=lambda: IdentityMemo(MAX_REMEMBERED_CONTEXTS), repr=False
    )

    @classmethod
    def build(
        cls,
        definitions: DefinitionSource,
        base_url: str = "",
        policy: Policy | None = None,
        consent_source: ConsentSource | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> ConsentEngine:
        policy = policy or load_policy()
        compartment = PatientCompartment.from_definitions(
            definitions, policy.parameters.extra_compartment_paths, base_url
        )
        describer = Describer(compartment, policy.parameters)
        return cls(policy, describer, FactsSource(policy.parameters, base_url, consent_source), clock)

    # -- per-request state ---------------------------------------------------------------------------------

    def context(self, state: dict[str, Any], identity: Any, headers: Any, kind: str) -> RequestContext:
        """The request context of the HTTP request (computed from its headers once), for this interaction kind."""
        base = state.get(STATE_CONTEXT)
        if base is None:
            base = state[STATE_CONTEXT] = self._made_context(identity, headers, kind)
        if base.interaction == kind:  # the common case: one interaction per request (replace() costs ~15 µs)
            return base
        return replace(base, interaction=kind, is_write=kind in {"create", "update", "delete", "patch"})

    def _made_context(self, identity: Any, headers: Any, kind: str) -> RequestContext:
        """`request_context()`, remembered: it depends on nothing but the identity (immutable, one object per verified
        token), the interaction kind and the headers in CONTEXT_HEADERS."""
        return self._contexts.made((identity,), (kind, *map(headers.get, CONTEXT_HEADERS)),
                                   request_context, identity, headers, kind, self.policy.parameters)

    def decision_id(self, state: dict[str, Any]) -> str:
        if STATE_DECISION_ID not in state:
            state[STATE_DECISION_ID] = uuid7()
        return str(state[STATE_DECISION_ID])

    def facts(self, state: dict[str, Any], connection: Any, patients: Iterable[str]) -> dict[str, PatientFacts]:
        cache: dict[str, PatientFacts] = state.setdefault(STATE_FACTS, {})
        missing = [patient for patient in set(patients) if patient not in cache]
        if missing:
            cache.update(fetch_facts(self.facts_source, connection, missing))
        return cache
