"""The audit pipeline stage: one AuditEvent per interaction (allowed, denied or failed) plus one AuthZconsent
event per distinct consent decision, written in the data's transaction or before the response leaves.

- create/update/delete outside a transaction run inside one write transaction opened here, so the data change
  and its audit commit together;
- entries of a transaction are audited on the transaction's connection (a rollback removes both; the outer
  transaction interaction then records the failure);
- reads, searches, operations and batches are audited in their own transaction after the handler and
  before the response is returned;
- if the audit cannot be written the client gets a 500 OperationOutcome instead of the data (fail closed).

Place it after authentication and before (outside) the consent stage, whose decisions it reads from
`RequestScope.state["consent.records"]` (duck-typed, so the audit does not import the consent package).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection

from gateway.audit.events import Access, Actor, DecisionFacts, balp_kind, consent_event, interaction_event
from gateway.audit.log import AuditLog, AuditWriteError, Pending, ReviewItem
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.store.availability import RETRY_AFTER_SECONDS, unavailable_reason

WRITE_KINDS = frozenset({kinds.CREATE, kinds.UPDATE, kinds.DELETE})
CONSENT_RECORDS = "consent.records"


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

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        if scope.connection is not None:  # inside a transaction: the audit commits or rolls back with it
            result = next_handler(scope, it)
            self._record_or_fail(scope.connection, scope, it, result.status, "")
            return result
        if it.kind in WRITE_KINDS:
            return self._write(scope, it, next_handler)
        try:
            result = next_handler(scope, it)
        except FhirError as error:
            self._record_alone(scope, it, error.status, error.issues[0].diagnostics)
            raise
        except Exception:
            self._record_alone(scope, it, 500, "internal error")
            raise
        self._record_alone(scope, it, result.status, "")
        return result

    def _write(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        try:
            with scope.services.store.write() as connection:
                result = next_handler(scope.child(connection), it)
                self.record(connection, scope, it, result.status, "", result)
            return result
        except AuditWriteError as error:
            raise _fail_closed(error) from None
        except FhirError as error:
            self._record_alone(scope, it, error.status, error.issues[0].diagnostics)
            raise
        except Exception:
            self._record_alone(scope, it, 500, "internal error")
            raise

    def _record_alone(self, scope: RequestScope, it: Interaction, status: int, diagnostics: str) -> None:
        try:
            with scope.services.store.write() as connection:
                self.record(connection, scope, it, status, diagnostics)
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
        connection: Connection,
        scope: RequestScope,
        it: Interaction,
        status: int,
        diagnostics: str,
        result: Result | None = None,
    ) -> None:
        consent = (scope.state.get(CONSENT_RECORDS) or {}).get(id(it))
        actor = _actor(scope.identity, it, consent)
        access = self._access(it, status, diagnostics, consent, result)
        recorded = self.clock().isoformat(timespec="microseconds")
        event = interaction_event(access, actor, recorded, str(uuid4()), self.site)
        pending = [Pending(event, balp_kind(access), tuple(access.patients), actor.client_id)]
        reviews = []
        for decision in _grouped_decisions(consent):
            decision_event = consent_event(decision, access, actor, recorded, str(uuid4()), self.site)
            patients = (decision.patient,) if decision.patient else ()
            pending.append(Pending(decision_event, "AuthZconsent", patients, actor.client_id))
            if "review" in decision.obligations and decision.effect == "permit" and decision.patient:
                expires = (self.clock() + self.btg_time_box).isoformat(timespec="seconds")
                reason = access.btg_reason or ""
                reviews.append(ReviewItem(
                    decision_event["id"], decision.patient, actor.client_id, actor.user_id, reason, recorded, expires
                ))
        self.log.append_all(connection, pending)
        for item in reviews:
            self.log.open_review(connection, item)

    def _access(self, it: Interaction, status: int, diagnostics: str, consent: Any, result: Result | None) -> Access:
        patients: list[str] = list(getattr(consent, "patients", []) or [])
        resources: list[str] = list(getattr(consent, "released", []) or [])
        if it.kind in WRITE_KINDS and result is not None and result.stored is not None:
            written = f"{result.stored.type}/{result.stored.id}/_history/{result.stored.version}"
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
            patients=patients,
            resources=resources,
            decision_id=getattr(consent, "decision_id", None),
            btg_reason=(getattr(request, "emergency_reason", "") or None) if _is_btg(request) else None,
        )


def _grouped_decisions(consent: Any) -> list[DecisionFacts]:
    """One AuthZconsent per (patient, rule, effect); permits about no patient are not consent decisions."""
    if consent is None:
        return []
    decisions = list(getattr(consent, "decisions", []) or [])
    request_decision = getattr(consent, "request_decision", None)
    if request_decision is not None and request_decision.effect.value == "deny":
        decisions.append(("", request_decision))
    counts: Counter[tuple[str | None, str, str]] = Counter()
    first: dict[tuple[str | None, str, str], Any] = {}
    for _, decision in decisions:
        if decision.patient is None and decision.effect.value == "permit":
            continue
        key = (decision.patient, decision.rule_id, decision.effect.value)
        counts[key] += 1
        first.setdefault(key, decision)
    grouped = []
    for key, decision in first.items():
        grouped.append(
            DecisionFacts(
                patient=decision.patient,
                effect=decision.effect.value,
                rule_id=decision.rule_id,
                policy_version=decision.policy_version,
                reason_en=decision.reason_en,
                reason_nl=decision.reason_nl,
                legal_basis=decision.legal_basis,
                obligations=[obligation.code for obligation in decision.obligations],
                consent_references=list(decision.consent_references),
                resources=counts[key],
            )
        )
    return grouped


def _actor(identity: Any, it: Interaction, consent: Any) -> Actor:
    request = getattr(consent, "request", None)

    def attr(name: str, fallback: str | None = None) -> Any:
        value = getattr(identity, name, None) if identity is not None else None
        if value is None and request is not None:
            value = getattr(request, fallback or name, None)
        return value

    forwarded = it.header("x-forwarded-for") or it.header("x-zcc-peer") or ""
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
