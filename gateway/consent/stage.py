"""The consent pipeline stage: nothing about a patient leaves the gateway without a decision.

Before the handler: the request rules (purpose, admin-only writes, break-the-glass prerequisites) and the
query-shape checks. After the handler: every resource in the response, whatever its shape, is judged; withheld
ones are removed (see gateway.consent.responses), a withheld single resource becomes a 404 (deny-as-404) or a
403, and the response carries the decision id. Place it after authentication and inside the audit stage.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from gateway.consent.conditions import RequestTarget
from gateway.consent.describe import security_labels
from gateway.consent.engine import (
    BTG_EXPIRES_HEADER,
    DECISION_HEADER,
    STATE_RECORDS,
    SUPPRESSED_HEADER,
    ConsentEngine,
    InteractionRecord,
)
from gateway.consent.explain import btg_hint
from gateway.consent.model import (
    DENY_AS_404,
    TIME_BOX,
    Decision,
    DisclosedResource,
    Effect,
    PatientFacts,
    RequestContext,
)
from gateway.consent.pdp import decide_request, decide_shape
from gateway.consent.query_safety import unsafe_search
from gateway.consent.responses import (
    CONTAINERS,
    PART_BUNDLES,
    RESPONSE_BUNDLES,
    FilterReport,
    Judge,
    filter_bundle,
    filter_parameters,
    filter_part_bundle,
    judge_unit,
    resources_in,
)
from gateway.fhir import interaction as kinds
from gateway.fhir.bundles import replaced_targets
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError, Issue, not_found
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.store.repository import StoredResource

SEARCH_KINDS = frozenset({kinds.SEARCH_TYPE, kinds.SEARCH_SYSTEM})
WRITE_KINDS = frozenset({kinds.CREATE, kinds.UPDATE, kinds.DELETE})
SYSTEM_KINDS = frozenset({kinds.SEARCH_SYSTEM, kinds.HISTORY_SYSTEM})
READ_KINDS = frozenset({kinds.READ, kinds.VREAD})
# (type, id) -> the current version (or None), read at once for a transaction's updates and deletes (`_prefetch`)
STATE_CURRENT = "consent.current"
_UNREAD = object()


class ConsentStage:
    def __init__(self, engine: ConsentEngine) -> None:
        self.engine = engine

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        engine = self.engine
        ctx = engine.context(scope.state, scope.identity, it.headers, it.kind)
        record = InteractionRecord(engine.decision_id(scope.state), ctx)
        scope.state.setdefault(STATE_RECORDS, {})[id(it)] = record
        now = engine.clock()
        self._check_request(scope, it, ctx, record, now)
        self._prefetch(scope, it)
        if_none_match = None
        if it.kind in {kinds.READ, kinds.VREAD} and it.header("if-none-match"):
            # a 304 would confirm existence and version without a decision: always fetch, decide, then compare
            if_none_match = it.header("if-none-match")
            it = replace(it, headers={k: v for k, v in it.headers.items() if k != "if-none-match"})
            scope.state[STATE_RECORDS][id(it)] = record
        result = next_handler(scope, it)
        result = self._filter(scope, it, ctx, record, result, now)
        if if_none_match and result.status == 200 and if_none_match in _etags(result):
            result = Result(304, headers=result.headers)
        return result

    # -- before the handler --------------------------------------------------------------------------------

    def _check_request(
        self, scope: RequestScope, it: Interaction, ctx: RequestContext, record: InteractionRecord, now: datetime
    ) -> None:
        describer = self.engine.describer
        target = RequestTarget(
            it.resource_type,
            self._targets_patient_data(it),
            ctx.is_write and self._protected_write(scope, it),
            now,
        )
        record.patient_data_target = target.patient_data_target
        decision = decide_request(self.engine.policy, ctx, target)
        record.request_decision = decision
        if decision.effect is Effect.DENY:
            raise FhirError(403, "forbidden", _both(decision), headers={DECISION_HEADER: record.decision_id})
        if it.kind in SEARCH_KINDS:
            registry = scope.services.search
            refusal = unsafe_search(
                it.resource_type,
                it.params,
                describer.patient_data_type,
                lambda rtype, code: _known(registry, rtype, code),
            )
            if refusal is not None:
                record.refusal = refusal.message
                raise FhirError(
                    refusal.status, refusal.code, refusal.message, headers={DECISION_HEADER: record.decision_id}
                )

    def _targets_patient_data(self, it: Interaction) -> bool:
        if it.kind in {kinds.CAPABILITIES, kinds.BATCH, kinds.TRANSACTION}:
            return False
        if it.kind in SYSTEM_KINDS or (it.kind == kinds.OPERATION and it.resource_type is None):
            return True
        return self.engine.describer.patient_data_type(it.resource_type)

    def _protected_write(self, scope: RequestScope, it: Interaction) -> bool:
        params = self.engine.policy.parameters
        current: Any = _UNREAD
        replaced = (it.resource_type, it.id) if it.kind in {kinds.UPDATE, kinds.DELETE} else None
        if replaced is not None:  # taken once, whatever decides below (a second entry about it would read afresh)
            current = (scope.state.get(STATE_CURRENT) or {}).pop(replaced, _UNREAD)
        if it.resource_type in params.protected_write_types:
            return True
        if it.body is not None and security_labels(it.body):
            return True
        if replaced is not None and it.resource_type and it.id:  # replacing labelled data is a label change too
            if current is _UNREAD:
                with scope.reading() as connection:
                    current = scope.services.store.get(connection, it.resource_type, it.id)
            if current is not None and current.body is not None and security_labels(current.resource()):
                return True
        return False

    def _prefetch(self, scope: RequestScope, it: Interaction) -> None:
        """A transaction's updates and deletes: the current versions `_protected_write` checks for
        labels, read in one statement on the transaction's connection instead of one read per entry (an ingested
        message updates ~20 resources)."""
        if it.kind != kinds.TRANSACTION or scope.connection is None or not isinstance(it.body, dict):
            return
        keys = replaced_targets(scope, it.body)
        if keys:
            found = scope.services.store.get_current(scope.connection, keys)
            scope.state[STATE_CURRENT] = {key: found.get(key) for key in keys}

    # -- after the handler ---------------------------------------------------------------------------------

    def _filter(
        self,
        scope: RequestScope,
        it: Interaction,
        ctx: RequestContext,
        record: InteractionRecord,
        result: Result,
        now: datetime,
    ) -> Result:
        result.headers[DECISION_HEADER] = record.decision_id
        # a read of one resource (the most common interaction): its version's shape is all there is to judge (a
        # Bundle or Parameters is judged by its parts)
        stored = _served_version(it, result)
        if stored is not None and stored.type not in CONTAINERS:
            found = self.engine.describer.remembered(stored)
            if found is None and (body := _body_to_judge(it, result)) is not None:
                found = self.engine.describer.shape_and_reference_of(body, stored)
            if found is not None:
                shape, reference = found
                decision = self._decide_one(scope, ctx, record, now, shape, reference)
                return self._released_or_refused(it, ctx, record, result, decision, reference)
        body = _body_to_judge(it, result)
        if body is None:
            return result
        versions = result.versions
        if body is not result.resource and result.stored is not None:  # a read's stored version, parsed here
            versions = {id(body): (body, result.stored)}
        judge, reference_of = self._judge(scope, ctx, body, now, record, versions)
        report: FilterReport | None = None
        kind = body.get("resourceType")
        if kind == "Bundle" and result.stored is None and body.get("type") in RESPONSE_BUNDLES:
            report = filter_bundle(
                body, judge, self.engine.describer.patient_data_type, btg_hint(self.engine.policy, ctx)
            )
        elif kind == "Bundle" and it.kind == kinds.OPERATION and body.get("type") in PART_BUNDLES:
            report = filter_part_bundle(body, judge)
        elif kind == "Parameters" and it.kind == kinds.OPERATION:
            report = filter_parameters(body, judge)
        if report is not None:
            result.resource, result.stored = body, None
            self._note(record, result, [(reference_of(resource), decision) for resource, decision in report.released],
                       len(report.withheld), len(report.suppressed_visible))
            if it.kind == kinds.HISTORY_INSTANCE and report.withheld and not report.released:
                # an empty history would confirm that the resource exists: answer as a read of it would
                withheld = next((d for _, d in report.withheld if d is not None), None)
                if withheld is None:
                    raise _not_found(it, record)
                raise self._refusal(it, ctx, withheld, record)
            return result
        return self._released_or_refused(it, ctx, record, result, judge_unit(body, judge), reference_of(body))

    def _decide_one(
        self, scope: RequestScope, ctx: RequestContext, record: InteractionRecord, now: datetime,
        shape: tuple[object, ...], reference: str,
    ) -> Decision:
        """The decision on one resource whose shape is known (a read), recorded: `_judge` without a body to walk."""
        facts = self._facts(scope, DisclosedResource.shape_patients(shape))
        decision = record.decided.get(shape) or decide_shape(self.engine.policy, ctx, shape, facts, now)
        record.decisions.append((reference, decision))
        return decision

    def _released_or_refused(
        self, it: Interaction, ctx: RequestContext, record: InteractionRecord, result: Result, decision: Decision,
        reference: str,
    ) -> Result:
        """The answer for a response that is one resource as a whole, decided."""
        if decision.effect is Effect.PERMIT:
            self._note(record, result, [(reference, decision)], 0, 0)
            return result
        record.withheld += 1
        if it.kind in WRITE_KINDS:  # the write happened; only the echo is withheld
            return Result(result.status, headers=result.headers)
        raise self._refusal(it, ctx, decision, record)

    def _judge(
        self,
        scope: RequestScope,
        ctx: RequestContext,
        body: dict[str, Any],
        now: datetime,
        record: InteractionRecord,
        versions: dict[int, tuple[dict[str, Any], Any]],
    ) -> tuple[Judge, Callable[[dict[str, Any]], str]]:
        """A judge for the resources of `body` (each decision recorded with the resource's reference), and the
        reference of a resource it knows. `versions`: the resources that are a stored version unchanged
        (`Result.versions`), whose shapes the describer remembers."""
        describer = self.engine.describer
        policy = self.engine.policy
        known = record.described  # descriptions the handler made already (a resource's description is pure)

        # every resource of the body: its shape (what a decision depends on) and reference, by object identity
        shapes: dict[int, tuple[tuple[object, ...], str]] = {}
        patients: set[str] = set()
        for resource in resources_in(body) or [body]:
            seen = known.get(id(resource)) if known else None
            stored = versions.get(id(resource)) if versions else None
            if seen is not None and seen[0] is resource:
                shape, reference = seen[1].shape, seen[1].reference
            elif stored is not None and stored[0] is resource:
                shape, reference = describer.shape_and_reference_of(resource, stored[1])
            else:
                shape, reference = describer.shape_and_reference(resource)
            shapes[id(resource)] = (shape, reference)
            if shape[1]:
                patients.update(shape[1])  # type: ignore[arg-type]
        facts = self._facts(scope, patients)

        # the id never matters to a decision: once per shape (or not at all when the handler decided it already)
        decided: dict[tuple[object, ...], Decision] = dict(record.decided)
        decisions = record.decisions

        def judge(resource: dict[str, Any]) -> Decision:
            shape, reference = shapes.get(id(resource)) or describer.shape_and_reference(resource)
            decision = decided.get(shape)
            if decision is None:
                decision = decided[shape] = decide_shape(policy, ctx, shape, facts, now)
            decisions.append((reference, decision))
            return decision

        def reference_of(resource: dict[str, Any]) -> str:
            return (shapes.get(id(resource)) or describer.shape_and_reference(resource))[1]

        return judge, reference_of

    def _facts(self, scope: RequestScope, patients: Collection[str]) -> dict[str, PatientFacts]:
        """The facts about these patients (none asked, none read). Without a snapshot transaction (no BEGIN/COMMIT):
        the facts query is one statement, and the facts are read apart from the data they judge anyway (see
        gateway.consent.facts)."""
        if not patients:
            return {}
        with scope.reading(snapshot=False) as connection:
            return self.engine.facts(scope.state, connection, patients)

    def _note(
        self,
        record: InteractionRecord,
        result: Result,
        released: list[tuple[str, Decision]],
        withheld: int,
        visible: int,
    ) -> None:
        record.released.extend([reference for reference, _ in released])
        record.withheld += withheld
        if visible:
            result.headers[SUPPRESSED_HEADER] = str(visible)
        distinct = {id(decision): decision for _, decision in released}  # a page shares a few decision objects
        if any(decision.has(TIME_BOX) for decision in distinct.values()):
            start = record.request.btg_started_at or self.engine.clock()
            hours = self.engine.policy.parameters.btg_time_box_hours
            result.headers[BTG_EXPIRES_HEADER] = (start + timedelta(hours=hours)).isoformat(timespec="seconds")

    def _refusal(
        self, it: Interaction, ctx: RequestContext, decision: Decision, record: InteractionRecord
    ) -> FhirError:
        headers = {DECISION_HEADER: record.decision_id}
        if decision.has(DENY_AS_404) and it.resource_type:
            return _not_found(it, record)
        issues = [Issue("error", "forbidden", _both(decision))]
        if decision.effect is Effect.PERMIT_FILTERED:
            issues.append(
                Issue("information", "suppressed", "the resource is withheld / het gegeven is achtergehouden")
            )
            hint = btg_hint(self.engine.policy, ctx)
            if hint:
                issues.append(Issue("information", "informational", hint))
        return FhirError(403, "forbidden", issues[0].diagnostics, issues=issues, headers=headers)


def _served_version(it: Interaction, result: Result) -> StoredResource | None:
    """The stored version a read is answered with, as its stored bytes."""
    stored = result.stored
    if it.kind in READ_KINDS and result.resource is None and stored is not None and stored.body is not None:
        return stored
    return None


def _body_to_judge(it: Interaction, result: Result) -> dict[str, Any] | None:
    """The response body as a dict. A read is served from its stored bytes and only judged here (never changed or
    rendered from this dict), and a decision reads no decimal: parse it with orjson (~5x faster than the
    decimal-exact parse of `Result.body_resource`; that parse for anything orjson refuses)."""
    stored = _served_version(it, result)
    if stored is not None and stored.body is not None:
        try:
            parsed = orjson.loads(stored.body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return result.body_resource()


def _not_found(it: Interaction, record: InteractionRecord) -> FhirError:
    error = not_found(it.resource_type or "", it.id)
    error.headers = {DECISION_HEADER: record.decision_id}
    return error


def _both(decision: Decision) -> str:
    return f"{decision.reason_en} / {decision.reason_nl} [rule {decision.rule_id}]"


def _known(registry: Any, resource_type: str | None, code: str) -> bool:
    if code in {"_id", "_lastUpdated"}:
        return True
    param = registry.get(resource_type, code) if registry is not None else None
    return param is not None and bool(getattr(param, "supported", False))


def _etags(result: Result) -> set[str]:
    etag = result.headers.get("ETag", "")
    return {etag, etag.removeprefix("W/")} if etag else set()
