"""The summary's view of the consent decision: before the document is assembled, every candidate resource is
judged with the same engine, context and facts the consent stage uses, so that the Composition, its section
narratives and its entry lists are built from released resources only. The consent stage still judges every
entry of the finished document afterwards (nothing can be added around it); both agree, so it removes nothing.

The decisions are added to the interaction's consent record, so the audit stage logs the withheld ones too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from gateway.consent.engine import STATE_RECORDS, ConsentEngine
from gateway.consent.model import DENY_AS_404, Decision, DisclosedResource, Effect
from gateway.consent.pdp import decide
from gateway.fhir.context import RequestScope
from gateway.fhir.interaction import Interaction


@dataclass
class Screening:
    """The outcome for one summary: which resources may go out, and how many were withheld visibly."""

    released: set[int] = field(default_factory=set)  # id() of released resource dicts
    withheld_visible: set[int] = field(default_factory=set)  # withheld, and the client may learn that
    hidden: set[int] = field(default_factory=set)  # deny-as-404: never mentioned
    btg_time_boxed: bool = False

    def allows(self, resource: dict[str, Any]) -> bool:
        return id(resource) in self.released

    def visibly_withheld(self, resource: dict[str, Any]) -> bool:
        return id(resource) in self.withheld_visible


class Screen(Protocol):
    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]]) -> Screening: ...


def release_everything(scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]]) -> Screening:
    """For deployments with the consent stage switched off (FHIR-conformance testing only)."""
    return Screening(released={id(resource) for resource in resources})


@dataclass(frozen=True)
class ConsentScreen:
    engine: ConsentEngine

    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]]) -> Screening:
        engine = self.engine
        ctx = engine.context(scope.state, scope.identity, it.headers, it.kind)
        items = [(resource, engine.describer.describe(resource)) for resource in resources]
        patients = {patient for _, item in items for patient in item.patients}
        facts = {}
        if patients:
            with scope.reading() as connection:
                facts = engine.facts(scope.state, connection, patients)
        now = engine.clock()
        record = scope.state.get(STATE_RECORDS, {}).get(id(it))
        decided: dict[DisclosedResource, Decision] = {}
        screening = Screening()
        for resource, item in items:
            key = replace(item, id=None)
            decision = decided.get(key)
            if decision is None:
                decision = decided[key] = decide(engine.policy, ctx, item, facts, now)
            if decision.effect is Effect.PERMIT:
                screening.released.add(id(resource))
                screening.btg_time_boxed |= decision.has("time-box")
                continue
            if record is not None:  # released ones are recorded by the stage when it judges the document
                record.decisions.append((item.reference, decision))
                record.withheld += 1
            if decision.has(DENY_AS_404):
                screening.hidden.add(id(resource))
            else:
                screening.withheld_visible.add(id(resource))
        return screening
