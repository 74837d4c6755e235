"""The summary's view of the consent decision: before the document is assembled, every candidate resource is
judged with the same engine, context and facts the consent stage uses, so that the Composition, its section
narratives and its entry lists are built from released resources only. The consent stage still judges every
entry of the finished document afterwards (nothing can be added around it); both agree, so it removes nothing.

A resource is described once: descriptions depend on the resource alone, so they are kept with the (cached)
record (`memo`). Descriptions and decisions (per shape, made with the stage's own engine, request context and
facts) go to the consent stage through the interaction's consent record: the stage judges every resource of the
document against them without describing or deciding a shape again. Withheld resources are recorded there as
well, so the audit stage logs them too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.consent.engine import STATE_RECORDS, ConsentEngine
from gateway.consent.model import DENY_AS_404, Decision, Effect
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
    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                 memo: dict[int, Any] | None = None) -> Screening: ...


def release_everything(scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                       memo: dict[int, Any] | None = None) -> Screening:
    """For deployments with the consent stage switched off (FHIR-conformance testing only)."""
    return Screening(released={id(resource) for resource in resources})


@dataclass(frozen=True)
class ConsentScreen:
    engine: ConsentEngine

    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                 memo: dict[int, Any] | None = None) -> Screening:
        """`memo`: id(resource) -> description, for resources that outlive the request (a cached record); the
        caller keeps those resources alive as long as the memo."""
        engine = self.engine
        ctx = engine.context(scope.state, scope.identity, it.headers, it.kind)
        describe = engine.describer.describe
        memo = {} if memo is None else memo
        items = []
        for resource in resources:
            item = memo.get(id(resource))
            if item is None:
                item = memo[id(resource)] = describe(resource)
            items.append((resource, item))
        patients = {patient for _, item in items for patient in item.patients}
        facts = {}
        if patients:
            with scope.reading() as connection:
                facts = engine.facts(scope.state, connection, patients)
        now = engine.clock()
        record = scope.state.get(STATE_RECORDS, {}).get(id(it))
        decided: dict[tuple[object, ...], Decision] = {}  # the id never matters to a decision: once per shape
        if record is not None:  # the stage takes the descriptions and the decisions from here
            record.described.update((id(resource), (resource, item)) for resource, item in items)
            decided = record.decided
        screening = Screening()
        for resource, item in items:
            key = item.shape
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
