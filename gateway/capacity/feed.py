"""The bed-status feed: keep the raw message (ingestion record), parse rows (CSV, JSON or SANER
MeasureReport), check each row, and apply each valid one in its own transaction through the FHIR pipeline
(so scopes, audit and the capacity stage see it). Every row gets a verdict: applied, duplicate,
out-of-order (older than what the store holds) or rejected with its reason."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.capacity.measure_input import is_measure_report_feed, measure_report_rows
from gateway.capacity.reconcile import APPLY, DUPLICATE, OUT_OF_ORDER, decide
from gateway.capacity.rows import CapacityRow, FeedFormatError, RowError, check_row, parse_feed
from gateway.capacity.state import read_unit
from gateway.capacity.terms import CapacityTerms
from gateway.fhir.context import RequestScope, Services
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.fhir.urls import interaction_for
from gateway.ingest.records import ACCEPTED, REJECTED, IngestRecord, IngestRecords
from gateway.ingest.records import DUPLICATE as RECORD_DUPLICATE

log = logging.getLogger("gateway.capacity")
SOURCE = "capacity"
REJECTED_ROW = "rejected"
_RETRIES = 3


@dataclass(frozen=True)
class RowResult:
    index: int
    verdict: str  # applied | duplicate | out-of-order | rejected
    key: str | None = None
    message: str = ""
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("row", self.index), ("verdict", self.verdict), ("unit", self.key),
                                  ("message", self.message), ("field", self.field)) if v not in (None, "")}


@dataclass
class FeedResult:
    record: IngestRecord
    rows: list[RowResult] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for row in self.rows if row.verdict == verdict)

    def summary(self) -> dict[str, Any]:
        return {"record": self.record.id, "status": self.record.status,
                "applied": self.count(APPLY), "duplicate": self.count(DUPLICATE),
                "outOfOrder": self.count(OUT_OF_ORDER), "rejected": self.count(REJECTED_ROW),
                "rows": [row.as_json() for row in self.rows], "outcome": self.record.outcome}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CapacityFeed:
    def __init__(self, services: Services, terms: CapacityTerms, records: IngestRecords,
                 clock: Callable[[], str] = _now) -> None:
        self.services, self.terms, self.records, self.clock = services, terms, records, clock

    def ingest(self, raw: bytes, content_type: str | None, identity: Any) -> FeedResult:
        record = IngestRecord(id=str(uuid.uuid4()), source=SOURCE, sha256=hashlib.sha256(raw).hexdigest(),
                              size=len(raw), received_at=self.clock(), status="received",
                              submitted_by=getattr(identity, "client_id", None), interaction="bed-status")
        self.records.add_received(record, raw)  # kept before anything can go wrong
        record.attempts = 1
        result = FeedResult(record)
        try:
            self._process(result, raw, content_type, identity)
        except FeedFormatError as error:
            record.status = REJECTED
            record.outcome = operation_outcome([Issue("error", "structure", str(error))])
        except Exception as error:  # noqa: BLE001 - a bug must not lose the message: keep it, say why
            log.exception("capacity feed %s failed", record.id)
            record.status = REJECTED
            record.outcome = operation_outcome([Issue("fatal", "exception", f"internal error: {type(error).__name__}")])
        record.processed_at = self.clock()
        self.records.finish(record)
        return result

    def _process(self, result: FeedResult, raw: bytes, content_type: str | None, identity: Any) -> None:
        record = result.record
        original = self.records.accepted_original(SOURCE, record.sha256, None, record.id)
        if original:
            record.status, record.duplicate_of = RECORD_DUPLICATE, original
            record.outcome = operation_outcome([Issue("information", "duplicate",
                                                      f"the same bytes were already processed as {original}")])
            return
        for index, raw_row in enumerate(self._raw_rows(raw, content_type)):
            checked = check_row(index, raw_row, self.terms)
            if isinstance(checked, RowError):
                result.rows.append(RowResult(index, REJECTED_ROW, None, checked.message, checked.field))
            else:
                result.rows.append(self.apply(index, checked, identity))
        record.resources = sorted({row.key for row in result.rows if row.verdict == APPLY and row.key})
        record.status = REJECTED if result.rows and all(r.verdict == REJECTED_ROW for r in result.rows) else ACCEPTED
        if not result.rows:
            record.status = REJECTED
        record.outcome = operation_outcome(_issues(result.rows)) if result.rows else operation_outcome(
            [Issue("error", "required", "the feed holds no rows")])

    def _raw_rows(self, raw: bytes, content_type: str | None) -> list[dict[str, Any]]:
        stripped = raw.lstrip()
        if stripped.startswith(b"{"):
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as error:
                raise FeedFormatError(f"invalid JSON: {error}") from None
            if is_measure_report_feed(body):
                return measure_report_rows(body)
        return parse_feed(raw, content_type)

    def apply(self, index: int, row: CapacityRow, identity: Any) -> RowResult:
        """Apply one checked row; retried when a concurrent report for the same unit got in first."""
        unit = f"Schedule/{row.key.schedule_id}"
        for attempt in range(_RETRIES):
            with self.services.store.read() as connection:
                state = read_unit(self.services.store, connection, row.key)
            decision = decide(row, state, self.terms)
            if decision.verdict != APPLY:
                why = "the same report was already applied" if decision.verdict == DUPLICATE else (
                    f"older than the stored report of {decision.previous}: ignored")
                return RowResult(index, decision.verdict, unit, why)
            try:
                self._write(decision.bundle or {}, identity)
                return RowResult(index, APPLY, unit)
            except FhirError as error:
                if error.status == 412 and attempt + 1 < _RETRIES:
                    continue
                return RowResult(index, REJECTED_ROW, unit, error.issues[0].diagnostics if error.issues else str(error))
        return RowResult(index, REJECTED_ROW, unit, "concurrent updates: gave up")  # pragma: no cover

    def _write(self, bundle: dict[str, Any], identity: Any) -> None:
        services = self.services
        it = interaction_for("POST", "", [], services.resource_types, {"prefer": "return=minimal"}, bundle)
        services.pipeline.dispatch(RequestScope(services, identity=identity), it)


def _issues(rows: list[RowResult]) -> list[Issue]:
    issues = []
    for row in rows:
        where = [f"row[{row.index}]" + (f".{row.field}" if row.field else "")]
        if row.verdict == REJECTED_ROW:
            issues.append(Issue("error", "invalid", f"row {row.index}: {row.message}", where))
        elif row.verdict in {DUPLICATE, OUT_OF_ORDER}:
            message = f"row {row.index} ({row.verdict}): {row.message}"
            issues.append(Issue("information", "informational", message, where))
    applied = sum(1 for row in rows if row.verdict == APPLY)
    issues.append(Issue("information", "informational", f"{applied} of {len(rows)} row(s) applied"))
    return issues
