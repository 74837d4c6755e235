"""The audit pipeline stage: one AuditEvent per interaction (allowed, denied or failed) plus one AuthZconsent
event per distinct consent decision, written in the data's transaction or before the response leaves.

- create/update/delete outside a transaction run inside one write transaction opened here, so the data change
  and its audit commit together;
- a transaction Bundle (also every ingested message) is one interaction (IHE BALP): its write transaction is
  opened here, its entries run on it and are folded into one AuditEvent whose `entity` lists every patient and
  every resource created, updated, deleted or disclosed (plus the query of each search entry), appended on the
  same connection just before the commit — a rollback removes data and event together, and a failed
  transaction is then recorded on its own with the failure;
- a batch is one interaction too: its read-type entries (reads, searches, operations) are folded into the
  batch's AuditEvent, written before the response leaves; its write entries commit one by one with their own
  event (a batch entry's write stands alone, and a write is never committed without its audit);
- reads, searches, operations and refusals are audited in their own transaction after the handler and
  before the response is returned; a read served on the event loop (`RequestScope.on_event_loop`) appends
  there only if no other writer holds the database, else its append waits on a worker thread, still before
  the response is returned;
- if the audit cannot be written the client gets a 500 (or a 503 when the database is unavailable)
  OperationOutcome instead of the data (fail closed).

Place it after authentication and before (outside) the consent stage, whose decisions it reads from
`RequestScope.state["consent.records"]` (duck-typed, so the audit does not import the consent package).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.audit.events import (
    Access,
    Actor,
    DecisionFacts,
    EntryAccess,
    balp_kind,
    consent_event,
    interaction_event,
)
from gateway.audit.log import AuditLog, AuditWriteError, Pending, ReviewItem
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.ids import uuid7
from gateway.memo import IdentityMemo
from gateway.store.availability import RETRY_AFTER_SECONDS, unavailable_reason

WRITE_KINDS = frozenset({kinds.CREATE, kinds.UPDATE, kinds.DELETE})
BUNDLE_KINDS = frozenset({kinds.TRANSACTION, kinds.BATCH})
CONSENT_RECORDS = "consent.records"
FOLDED = "audit.folded"  # the entries of the transaction/batch being audited (list[_Entry])
_DECISION_FACTS: IdentityMemo[DecisionFacts] = IdentityMemo(16384)


@dataclass
class _Entry:
    """A Bundle entry, run and folded into its Bundle's AuditEvent."""

    it: Interaction
    status: int
    diagnostics: str = ""
    result: Result | None = None


class AuditStage:
    def __init__(
        self,
        log: AuditLog,
        site: str,
        clock: Callable[[], datetime],
        btg_time_box: timedelta = timedelta(hours=4),
    ) -> None:
        self.log = log
        self.site = site
        self.clock = clock
        self.btg_time_box = btg_time_box
        # the actor of a verified token (its identity object) with a request context and a forwarded address
        self._actors: IdentityMemo[Actor] = IdentityMemo(4096)

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        folded: list[_Entry] | None = scope.state.get(FOLDED)
        if folded is not None and it.kind not in BUNDLE_KINDS:
            if scope.connection is not None or it.kind not in WRITE_KINDS:  # a transaction entry, a batch read
                return self._fold(folded, scope, it, next_handler)
        if scope.connection is not None:  # inside a transaction: the audit commits or rolls back with it
            result = next_handler(scope, it)
            self._record_or_fail(scope.connection, scope, it, result.status, "")
            return result
        if it.kind in WRITE_KINDS or it.kind == kinds.TRANSACTION:
            return self._write(scope, it, next_handler)
        entries = self._open_fold(scope, it)
        try:
            result = next_handler(scope, it)
        except Exception as error:
            self._record_failure(scope, it, error, entries)
            raise
        finally:
            self._close_fold(scope, it)
        self._record_alone(scope, it, result.status, "", entries)
        return result

    def _write(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        """A write, or a whole transaction: the handler runs on the write transaction opened here and the
        audit is appended on it before the commit."""
        entries = self._open_fold(scope, it)
        try:
            with scope.services.store.write() as connection:
                result = next_handler(scope.child(connection), it)
                self.record(connection, scope, it, result.status, "", result, entries)
            return result
        except AuditWriteError as error:
            raise _fail_closed(error) from None
        except Exception as error:  # rolled back: record the refusal (and what the entries decided) on its own
            self._record_failure(scope, it, error, entries)
            raise
        finally:
            self._close_fold(scope, it)

    def _record_failure(self, scope: RequestScope, it: Interaction, error: Exception,
                        entries: list[_Entry] | None) -> None:
        """A refused (FhirError) or failed interaction is audited too, on its own transaction."""
        if isinstance(error, FhirError):
            self._record_alone(scope, it, error.status, error.issues[0].diagnostics, entries)
        else:
            self._record_alone(scope, it, 500, "internal error", entries)

    def _open_fold(self, scope: RequestScope, it: Interaction) -> list[_Entry] | None:
        if it.kind not in BUNDLE_KINDS:
            return None
        entries: list[_Entry] = []
        scope.state[FOLDED] = entries
        return entries

    def _close_fold(self, scope: RequestScope, it: Interaction) -> None:
        if it.kind in BUNDLE_KINDS:
            scope.state.pop(FOLDED, None)

    def _fold(self, folded: list[_Entry], scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        try:
            result = next_handler(scope, it)
        except FhirError as error:
            folded.append(_Entry(it, error.status, error.issues[0].diagnostics))
            raise
        except Exception:
            folded.append(_Entry(it, 500, "internal error"))
            raise
        folded.append(_Entry(it, result.status, "", result))
        return result

    def _record_alone(
        self, scope: RequestScope, it: Interaction, status: int, diagnostics: str, entries: list[_Entry] | None = None
    ) -> None:
        """In a write transaction of its own (on this thread's audit writer), committed before returning. On the
        event loop, where nothing may wait for the database: appended now if that needs no waiting, else left
        in `scope.deferred` for the HTTP boundary to append on a worker thread before it answers."""
        engine = scope.services.store.engine
        try:
            pending, reviews = self.events(scope, it, status, diagnostics, None, entries)
            if not scope.on_event_loop:
                self.log.append_all(engine, pending, reviews)
            elif not self.log.append_now(engine, pending, reviews):
                scope.deferred.append(lambda: self._append_or_fail(engine, pending, reviews))
            elif self.log.wal_checkpoint_due(engine):  # the log's fsync, off the loop
                scope.deferred.append(lambda: self.log.checkpoint_wal(engine))
        except AuditWriteError as error:
            raise _fail_closed(error) from None

    def _append_or_fail(self, engine: Engine, pending: list[Pending], reviews: list[ReviewItem]) -> None:
        try:
            self.log.append_all(engine, pending, reviews)
        except AuditWriteError as error:
            raise _fail_closed(error) from None

    def _record_or_fail(
        self, connection: Connection, scope: RequestScope, it: Interaction, status: int, diagnostics: str
    ) -> None:
        try:
            self.record(connection, scope, it, status, diagnostics)
        except AuditWriteError as error:
            raise _fail_closed(error) from None

    # -- building the events ---------------------------------------------------------------------------------

    def record(
        self,
        target: Connection | Engine,
        scope: RequestScope,
        it: Interaction,
        status: int,
        diagnostics: str,
        result: Result | None = None,
        entries: Iterable[_Entry] | None = None,
    ) -> None:
        """Append the interaction's AuditEvent and its AuthZconsent events on `target` (a Connection: in its
        transaction; the Engine: in a transaction of their own). Raises AuditWriteError when it cannot."""
        pending, reviews = self.events(scope, it, status, diagnostics, result, entries)
        self.log.append_all(target, pending, reviews)

    def events(
        self,
        scope: RequestScope,
        it: Interaction,
        status: int,
        diagnostics: str,
        result: Result | None = None,
        entries: Iterable[_Entry] | None = None,
    ) -> tuple[list[Pending], list[ReviewItem]]:
        """The interaction's AuditEvent, its AuthZconsent events and the break-the-glass review items they open."""
        records = scope.state.get(CONSENT_RECORDS) or {}
        consent = records.get(id(it))
        folded = list(entries or ())
        actor = self._actor(scope.identity, it, consent)
        access = self._access(it, status, diagnostics, consent, result)
        if folded:
            access = _with_entries(access, [
                (entry, self._access(entry.it, entry.status, entry.diagnostics, records.get(id(entry.it)),
                                     entry.result)) for entry in folded
            ])
        recorded = self.clock().isoformat(timespec="microseconds")
        event = interaction_event(access, actor, recorded, uuid7(), self.site)
        pending = [Pending(event, balp_kind(access), tuple(access.patients), actor.client_id, built=True)]
        reviews: list[ReviewItem] = []
        consents = [consent] + [records.get(id(entry.it)) for entry in folded]
        for decision in _grouped_decisions(consents):
            decision_event = consent_event(decision, access, actor, recorded, uuid7(), self.site)
            patients = (decision.patient,) if decision.patient else ()
            pending.append(Pending(decision_event, "AuthZconsent", patients, actor.client_id, built=True))
            if "review" in decision.obligations and decision.effect == "permit" and decision.patient:
                expires = (self.clock() + self.btg_time_box).isoformat(timespec="seconds")
                reason = access.btg_reason or ""
                reviews.append(ReviewItem(
                    decision_event["id"], decision.patient, actor.client_id, actor.user_id, reason, recorded, expires
                ))
        return pending, reviews

    def _actor(self, identity: Any, it: Interaction, consent: Any) -> Actor:
        """`_actor`, remembered per identity object (one per verified token), request context object and forwarded
        address."""
        request = getattr(consent, "request", None)
        forwarded = it.header("x-forwarded-for") or it.header("x-zcc-peer") or ""
        return self._actors.made((identity, request), (forwarded,), _actor, identity, request, forwarded)

    def _access(self, it: Interaction, status: int, diagnostics: str, consent: Any, result: Result | None) -> Access:
        patients: list[str] = list(getattr(consent, "patients", []) or [])
        resources: list[str] = list(getattr(consent, "released", []) or [])
        written = _written(it, result)
        if written:
            resources = [written] + [r for r in resources if not written.startswith(r + "/")]
        request = getattr(consent, "request", None)
        return Access(
            kind=it.kind,
            method=it.method,
            path=it.path,
            query="&".join(f"{name}={value}" for name, value in it.params),
            status=status,
            diagnostics=diagnostics,
            patient_data=bool(getattr(consent, "patient_data_target", False)),
            patients=list(map(str, patients)),
            resources=list(map(str, resources)),  # text only (a page: hundreds, so not one call each in Python)
            decision_id=_text(getattr(consent, "decision_id", None)),
            btg_reason=_text(getattr(request, "emergency_reason", "") or None) if _is_btg(request) else None,
        )


def _written(it: Interaction, result: Result | None) -> str | None:
    """`Type/id/_history/n` of what a write wrote — also when the consent stage withheld the echo (then only
    the Location header says it)."""
    if it.kind not in WRITE_KINDS or result is None:
        return None
    if result.stored is not None:
        return f"{result.stored.type}/{result.stored.id}/_history/{result.stored.version}"
    location = result.headers.get("Location") or result.headers.get("Content-Location") or ""
    _, _, path = location.partition(f"{it.resource_type}/") if it.resource_type else ("", "", "")
    return f"{it.resource_type}/{path}" if path else None


def _with_entries(access: Access, entries: list[tuple[_Entry, Access]]) -> Access:
    """The Bundle's access with its entries folded in: every patient, every resource, each entry's interaction."""
    patients = list(dict.fromkeys([*access.patients, *(p for _, entry in entries for p in entry.patients)]))
    resources = list(dict.fromkeys([*access.resources, *(r for _, entry in entries for r in entry.resources)]))
    return Access(
        kind=access.kind,
        method=access.method,
        path=access.path,
        query=access.query,
        status=access.status,
        diagnostics=access.diagnostics,
        patient_data=access.patient_data or any(entry.patient_data for _, entry in entries),
        patients=patients,
        resources=resources,
        decision_id=access.decision_id or next((e.decision_id for _, e in entries if e.decision_id), None),
        btg_reason=access.btg_reason or next((e.btg_reason for _, e in entries if e.btg_reason), None),
        entries=[
            EntryAccess(entry.kind, entry.method, entry.path, entry.query, entry.status, entry.diagnostics)
            for _, entry in entries
        ],
    )


def _grouped_decisions(consents: Iterable[Any]) -> list[DecisionFacts]:
    """One AuthZconsent per (patient, rule, effect) over the records of an interaction (and of the entries
    folded into it); permits about no patient are not consent decisions."""
    # a page of resources shares a few decision objects (one per resource shape): count those first
    per_object: dict[int, list[Any]] = {}
    for consent in consents:
        if consent is None:
            continue
        decisions = [decision for _, decision in getattr(consent, "decisions", []) or []]
        request_decision = getattr(consent, "request_decision", None)
        if request_decision is not None and request_decision.effect.value == "deny":
            decisions.append(request_decision)
        for decision in decisions:
            seen = per_object.get(id(decision))
            if seen is None:
                per_object[id(decision)] = [decision, 1]
            else:
                seen[1] += 1
    counts: dict[tuple[str | None, str, str], int] = {}
    first: dict[tuple[str | None, str, str], Any] = {}
    for decision, times in per_object.values():
        if decision.patient is None and decision.effect.value == "permit":
            continue
        key = (decision.patient, decision.rule_id, decision.effect.value)
        counts[key] = counts.get(key, 0) + times
        first.setdefault(key, decision)
    # remembered per decision object (the consent PDP makes one per rule, patient and unmet conditions, and shares
    # it) and count
    return [_DECISION_FACTS.made((decision,), (counts[key],), _decision_facts, decision, counts[key])
            for key, decision in first.items()]


def _decision_facts(decision: Any, resources: int) -> DecisionFacts:
    return DecisionFacts(
        patient=_text(decision.patient),
        effect=str(decision.effect.value),
        rule_id=str(decision.rule_id),
        policy_version=str(decision.policy_version),
        reason_en=str(decision.reason_en),
        reason_nl=str(decision.reason_nl),
        legal_basis=str(decision.legal_basis or ""),
        obligations=tuple(str(obligation.code) for obligation in decision.obligations),
        consent_references=tuple(str(reference) for reference in decision.consent_references),
        resources=resources,
    )


def _actor(identity: Any, request: Any, forwarded: str) -> Actor:
    def attr(name: str, fallback: str | None = None) -> str | None:
        value = getattr(identity, name, None) if identity is not None else None
        if value is None and request is not None:
            value = getattr(request, fallback or name, None)
        return _text(value)  # text only: the events are canonicalised without a plain-value walk

    return Actor(
        client_id=attr("client_id"),
        user_id=attr("user_id") or attr("subject", "user_id"),
        role=attr("role"),
        ura=attr("ura"),
        organization_type=attr("organization_type"),
        token_jti=attr("token_id", "token_jti") or attr("jti", "token_jti"),
        address=forwarded.split(",")[0].strip() or None,
        purpose_of_use=attr("purpose_of_use"),
    )


def _text(value: Any) -> str | None:
    return None if value is None else value if type(value) is str else str(value)


def _is_btg(request: Any) -> bool:
    flow = getattr(request, "flow", None)
    return getattr(flow, "value", flow) == "btg"


def _fail_closed(error: AuditWriteError) -> FhirError:
    """No audit, no data. A database that is down, locked or full is a 503 the client may retry; else a 500."""
    reason = unavailable_reason(error.__cause__) if error.__cause__ is not None else None
    if reason is not None:
        return FhirError(503, "transient", f"{reason}: the access could not be audited, so no data is returned",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return FhirError(500, "exception", "the access could not be audited, so no data is returned")
