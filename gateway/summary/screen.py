"""The summary's view of the consent decision: before the document is assembled, every candidate resource is
judged with the same engine, context and facts the consent stage uses, so that the Composition, its section
narratives and its entry lists are built from released resources only. The consent stage still judges every
entry of the finished document afterwards (nothing can be added around it); both agree, so it removes nothing.

A resource is described once: descriptions depend on the resource alone, so they are kept with the (cached)
record (`memo`), grouped by shape: a request decides each shape once and releases or withholds its group.
Descriptions and decisions (per shape, made with the stage's own engine, request context and
facts) go to the consent stage through the interaction's consent record: the stage judges every resource of the
document against them without describing or deciding a shape again. Withheld resources are recorded there as
well, so the audit stage logs them too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
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
    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                 memo: dict[Any, Any] | None = None) -> Screening: ...


def release_everything(scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                       memo: dict[Any, Any] | None = None) -> Screening:
    """For deployments with the consent stage switched off (FHIR-conformance testing only)."""
    return Screening(released={id(resource) for resource in resources})


@dataclass
class _Plan:
    """The resources of one screening, described and grouped by shape (a decision depends on the shape only):
    per request only the shapes are decided (tens, not hundreds) and a permitted shape releases its whole group.
    Kept in the memo for the same resource list (the same objects: a cached record seen through one set of
    scopes)."""

    resources: list[dict[str, Any]]  # kept alive with the plan: the ids below stay theirs
    described: dict[int, tuple[dict[str, Any], DisclosedResource]]  # for the consent stage's record
    shapes: list[tuple[tuple[object, ...], DisclosedResource, list[int]]]  # shape, a description, ids: first-seen order
    order: list[tuple[int, int]]  # (shape index, id) per resource, in the given order
    patients: set[str]


_PLANS = "screen.plans"  # memo key of the plans (the memo's other keys are resource ids)
PLANS_PER_MEMO = 4


def _plan(describe: Any, resources: list[dict[str, Any]], memo: dict[Any, Any]) -> _Plan:
    key = tuple(map(id, resources))
    plans = memo.setdefault(_PLANS, {})
    plan = plans.get(key)
    if plan is not None:
        return plan
    described: dict[int, tuple[dict[str, Any], DisclosedResource]] = {}
    index: dict[tuple[object, ...], int] = {}
    shapes: list[tuple[tuple[object, ...], DisclosedResource, list[int]]] = []
    order: list[tuple[int, int]] = []
    patients: set[str] = set()
    for resource in resources:
        item = memo.get(id(resource))
        if item is None:
            item = memo[id(resource)] = describe(resource)
        described[id(resource)] = (resource, item)
        patients |= item.patients
        shape = item.shape
        position = index.get(shape)
        if position is None:
            position = index[shape] = len(shapes)
            shapes.append((shape, item, []))
        shapes[position][2].append(id(resource))
        order.append((position, id(resource)))
    plan = _Plan(resources, described, shapes, order, patients)
    if len(plans) >= PLANS_PER_MEMO:
        plans.clear()
    plans[key] = plan
    return plan


@dataclass(frozen=True)
class ConsentScreen:
    engine: ConsentEngine

    def __call__(self, scope: RequestScope, it: Interaction, resources: Iterable[dict[str, Any]],
                 memo: dict[Any, Any] | None = None) -> Screening:
        """`memo`: descriptions (and their grouping) for resources that outlive the request (a cached record);
        the caller keeps those resources alive as long as the memo."""
        engine = self.engine
        ctx = engine.context(scope.state, scope.identity, it.headers, it.kind)
        plan = _plan(engine.describer.describe, list(resources), {} if memo is None else memo)
        facts = {}
        if plan.patients:
            with scope.reading() as connection:
                facts = engine.facts(scope.state, connection, plan.patients)
        now = engine.clock()
        record = scope.state.get(STATE_RECORDS, {}).get(id(it))
        decided: dict[tuple[object, ...], Decision] = {}  # the id never matters to a decision: once per shape
        if record is not None:  # the stage takes the descriptions and the decisions from here
            record.described.update(plan.described)
            decided = record.decided
        screening = Screening()
        decisions: list[Decision] = []
        for shape, item, ids in plan.shapes:
            decision = decided.get(shape)
            if decision is None:
                decision = decided[shape] = decide(engine.policy, ctx, item, facts, now)
            decisions.append(decision)
            if decision.effect is Effect.PERMIT:
                screening.released.update(ids)
                screening.btg_time_boxed |= decision.has("time-box")
        if len(screening.released) == len(plan.order):
            return screening
        for position, resource_id in plan.order:  # the withheld ones, in the given order
            decision = decisions[position]
            if decision.effect is Effect.PERMIT:
                continue
            if record is not None:  # released ones are recorded by the stage when it judges the document
                record.decisions.append((plan.described[resource_id][1].reference, decision))
                record.withheld += 1
            if decision.has(DENY_AS_404):
                screening.hidden.add(resource_id)
            else:
                screening.withheld_visible.add(resource_id)
        return screening
