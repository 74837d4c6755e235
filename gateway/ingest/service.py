"""The ingestion pipeline: keep the raw message, translate, decide patient identity, validate, write one
transaction Bundle (resources + Provenance) through the FHIR pipeline, and record the outcome."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.auth.scopes import access_for
from gateway.consent.describe import security_labels
from gateway.fhir.context import RequestScope, Services
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.fhir.urls import interaction_for
from gateway.ingest.adapters import ADAPTERS, SOURCES, Adapter
from gateway.ingest.bundle import dangling_references, resolve_references, transaction_bundle
from gateway.ingest.identity import PatientDecision, conflicting_demographics, decide_patient, stable_id
from gateway.ingest.locks import message_locks
from gateway.ingest.provenance import ingestion_provenance
from gateway.ingest.records import ACCEPTED, DUPLICATE, REJECTED, IngestRecord, IngestRecords
from gateway.ingest.validation import (
    OutputValidation,
    Structured,
    Validated,
    check_structure,
    prevalidated_write_checks,
    structure_checker_of,
    validate_output,
)
from gateway.store.availability import unavailable_reason
from gateway.store.repository import StoredResource, as_current

log = logging.getLogger("gateway.ingest")

DEFAULT_MAX_MESSAGE = 20 * 1024 * 1024
BSN_CONFLICT = "bsn-demographics-conflict"
# always through the transaction: the ingestion's own Provenance, and the types the consent policy guards on write
_ALWAYS_WRITTEN = frozenset({"Provenance", "Consent", "AuditEvent"})


class UnknownSource(ValueError):
    pass


@dataclass
class IngestResult:
    record: IngestRecord
    response: dict[str, Any] | None = None  # the transaction-response Bundle when accepted
    issues: list[Issue] = field(default_factory=list)

    @property
    def outcome(self) -> dict[str, Any]:
        return self.record.outcome or operation_outcome([Issue("information", "informational", "no issues")])


class _Rejected(Exception):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(issues[0].diagnostics if issues else "rejected")
        self.issues = issues


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class IngestService:
    def __init__(self, services: Services, records: IngestRecords | None = None,
                 adapters: dict[str, Adapter] | None = None, max_message: int = DEFAULT_MAX_MESSAGE,
                 clock: Callable[[], str] = _now) -> None:
        self.services = services
        self.records = records or IngestRecords(services.store.engine)
        self.adapters = ADAPTERS if adapters is None else adapters
        self.max_message = max_message
        self.clock = clock
        self._output_validation: OutputValidation | None = None

    def _validation(self) -> OutputValidation:
        """One result cache per validator and write checks' structure checker (both set once at start-up)."""
        current = self._output_validation
        structure_checker = structure_checker_of(self.services.write_checks, self.services.validation)
        if (current is None or current.validation is not self.services.validation
                or current.structure_checker is not structure_checker):
            current = self._output_validation = OutputValidation(self.services.validation,
                                                                 structure_checker=structure_checker)
        return current

    # -- entry points --------------------------------------------------------------------------------------

    def ingest(self, source: str, raw: bytes, identity: Any, lenient: bool = False) -> IngestResult:
        if source not in SOURCES:
            raise UnknownSource(f"unknown source '{source}' (one of {', '.join(SOURCES)})")
        record = IngestRecord(
            id=str(uuid.uuid4()), source=source, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw),
            received_at=self.clock(), status="received", submitted_by=getattr(identity, "client_id", None),
        )
        self.records.add_received(record, raw)  # kept before anything can go wrong
        return self._process(record, raw, identity, lenient)

    def retry(self, record_id: str, identity: Any, lenient: bool = False) -> IngestResult:
        record, raw = self.records.get(record_id), self.records.raw(record_id)
        if record is None or raw is None:
            raise KeyError(record_id)
        record.flags, record.resources, record.unmapped, record.duplicate_of = [], [], [], None
        return self._process(record, raw, identity, lenient)

    # -- the steps -----------------------------------------------------------------------------------------

    def _process(self, record: IngestRecord, raw: bytes, identity: Any, lenient: bool) -> IngestResult:
        record.attempts += 1
        with ExitStack() as held:  # locks taken on the way, held until the record says how it ended
            result = self._attempt(record, raw, identity, lenient, held)
            record.processed_at = self.clock()
            self.records.finish(record)
        return result

    def _attempt(self, record: IngestRecord, raw: bytes, identity: Any, lenient: bool, held: ExitStack
                 ) -> IngestResult:
        try:
            result = self._translate_and_write(record, raw, identity, lenient, held)
        except _Rejected as rejected:
            record.status = REJECTED
            record.outcome = operation_outcome(rejected.issues)
            result = IngestResult(record, issues=rejected.issues)
        except FhirError as error:  # the transaction was refused (scopes, consent, validation): nothing written
            if error.status >= 500:  # not the message's fault (e.g. the audit could not be written): retryable
                raise
            record.status = REJECTED
            record.outcome = error.outcome()
            result = IngestResult(record, issues=error.issues)
        except Exception as error:  # noqa: BLE001 - a bug must not lose the message: keep it, say why
            if unavailable_reason(error) is not None:  # database down/locked/full: the sender gets 503 and retries;
                raise  # the raw message stays kept as `received` (`zcc-gateway ingest --retry ID` re-processes it)
            log.exception("ingestion %s failed", record.id)
            issue = Issue("fatal", "exception", f"internal error while ingesting: {type(error).__name__}: {error}")
            record.status = REJECTED
            record.outcome = operation_outcome([issue])
            result = IngestResult(record, issues=[issue])
        return result

    def _translate_and_write(self, record: IngestRecord, raw: bytes, identity: Any, lenient: bool,
                             held: ExitStack) -> IngestResult:
        if record.size > self.max_message:
            raise _Rejected([Issue("error", "too-costly",
                                   f"the message is {record.size} bytes; the limit is {self.max_message}")])
        # an accepted record stays accepted: finding one needs no lock (and saves translating a resend)
        original = self.records.accepted_original(record.source, record.sha256, None, record.id)
        if original:
            return self._duplicate(record, original, "the same bytes")
        adapter = self.adapters.get(record.source)
        if adapter is None:
            raise _Rejected([Issue("error", "not-supported", f"there is no adapter for source '{record.source}' yet")])
        try:
            translation = adapter(raw, getattr(identity, "ura", None) or "unknown")
        except ValueError as error:  # TranslationError and friends
            code = getattr(error, "code", "invalid")
            where = [error.xpath] if getattr(error, "xpath", None) else []  # e.g. the HL7v2 segment and field
            raise _Rejected([Issue("error", code, getattr(error, "diagnostics", str(error)), where)]) from None
        record.message_id, record.interaction = translation.message_id, translation.interaction
        record.sender = _identifier_text(translation.sender_organization)
        record.sender_name = translation.sender_name
        record.unmapped = [u.as_dict() for u in translation.unmapped]
        issues = [Issue(i.severity, i.code, i.diagnostics, [i.xpath] if i.xpath else []) for i in translation.issues]
        assigned, urls = self._identify(translation, issues, strict=not lenient)
        dangling = [resolve_references(mapped.resource, urls) for mapped, _, _ in assigned]
        output = self._validation()
        for mapped, resource_id, _ in assigned:  # validated now (remembered by content), not under the locks below
            output.issues(_with_id(mapped.resource, resource_id))
        # the same bytes, or the same message id in other bytes (a resend re-encoded), arriving at several
        # processes or instances at once: one at a time, held until the record says how it ended, so that the
        # others find it accepted (both looked for again under the locks). And one message about a patient at a
        # time: the demographics check and the no-op check read the stored patient before the write transaction,
        # so a concurrent message about the same BSN must not write it in between.
        names = [f"ingest|{record.source}|{record.sha256}"]
        if record.message_id:
            names.append(f"ingest|{record.source}|id|{record.message_id}")
        patients = [f"ingest|Patient/{resource_id}" for _, resource_id, decision in assigned if decision is not None]
        held.enter_context(message_locks(self.services.store.engine, names, patients))
        match = self.records.accepted_match(record.source, record.sha256, record.message_id, record.id)
        if match:
            original, same = match
            return self._duplicate(record, original, "the same bytes" if same == "sha256" else
                                   f"the same message id {record.message_id}")
        resources, current = self._resources(record, assigned, issues)
        unchanged = self._unchanged(resources, identity, current)
        if unchanged:
            issues.append(Issue("information", "informational", f"{len(unchanged)} resource(s) of the message are "
                                "stored with exactly this content already: not written again (no new version; the "
                                "record lists their current version)"))
        # in one global order (type, id), so that concurrent ingestions (processes, instances on PostgreSQL) that
        # update the same resources lock their rows in the same order and cannot deadlock
        written = sorted((r for r in resources if _key(r) not in unchanged), key=_key)
        provenance = ingestion_provenance(
            [f"{r['resourceType']}/{r['id']}" for r in resources], record.received_at,
            _sender_reference(translation, urls), translation.sender_name, record.message_id,
            f"{self.services.settings.base_url.removesuffix('/fhir')}/ingest/{record.id}")
        provenance["id"] = stable_id(f"Provenance|ingest|{record.id}")
        resources.append(provenance)
        written.append(provenance)
        if any(dangling):  # located only when there is something to report (the adapter's bug)
            issues += dangling_references(resources)
        validated: Validated = {}
        issues += validate_output(resources, output, validated)
        if record.unmapped:
            issues.append(Issue("information", "informational",
                                f"{len(record.unmapped)} element(s) of the message are not mapped; see `unmapped`"))
        errors = [i for i in issues if i.severity in {"error", "fatal"}]
        if errors and not lenient:
            raise _Rejected(issues)
        if errors:  # lenient: accepted, the errors stay visible as warnings
            for issue in errors:
                issue.severity = "warning"
        # what the write transaction would do per resource but need not do there (on SQLite it holds the one write
        # lock other ingestion processes wait for): the write checks' structure check and the index rows
        structured = check_structure(written, output)
        self.services.store.prepare_index(written)
        # the resources `_current` found absent are most likely still so: created without reading them first
        self.services.store.expect_new(_key(r) for r in written if _key(r) not in current)
        response = self._write(written, identity, validated, lenient, structured, output.structure_checker)
        record.status = ACCEPTED
        record.resources = _locations(response, resources, unchanged)
        record.outcome = operation_outcome(issues) if issues else None
        return IngestResult(record, response, issues)

    def _identify(self, translation: Any, issues: list[Issue], strict: bool
                  ) -> tuple[list[tuple[Any, str, PatientDecision | None]], dict[str, str]]:
        """The stable id of every translated resource ((mapped, id, the patient decision of a patient), and
        placeholder -> `Type/id`). A message that identifies no patient is rejected here."""
        urls: dict[str, str] = {}
        assigned: list[tuple[Any, str, PatientDecision | None]] = []
        for mapped in translation.resources:
            decision = None
            if mapped.key in translation.patient_keys:
                decision = decide_patient(mapped.resource, f"{translation.interaction}.patient", strict)
                issues.extend(decision.issues)
                if decision.id is None:
                    raise _Rejected(issues)
                resource_id = decision.id
            else:
                resource_id = stable_id(mapped.key)
            urls[mapped.full_url] = f"{mapped.resource_type}/{resource_id}"
            assigned.append((mapped, resource_id, decision))
        return assigned, urls

    def _resources(self, record: IngestRecord, assigned: list[tuple[Any, str, PatientDecision | None]],
                   issues: list[Issue]) -> tuple[list[dict[str, Any]], dict[tuple[str, str], StoredResource]]:
        """(the resources under their stable ids, the stored current version of each resource that has one). The
        current versions are read in one statement, for the patient check here and the no-op check after
        (`_unchanged`); identity matching reads the store directly: it decides where data goes, it discloses
        nothing. A patient whose stored demographics conflict is left out (and the record flagged)."""
        current = self._current([(mapped.resource["resourceType"], resource_id) for mapped, resource_id, _ in assigned])
        resources: list[dict[str, Any]] = []
        for mapped, resource_id, decision in assigned:
            resource = mapped.resource
            if decision is not None:
                stored = current.get(("Patient", resource_id))
                conflict = conflicting_demographics(
                    stored.resource() if stored is not None and not stored.deleted else None, resource)
                if conflict:
                    record.flags.append(BSN_CONFLICT)
                    issues.append(Issue("warning", "conflict", f"BSN {decision.bsn}: {conflict}; the stored "
                                        "patient is not changed, the record is flagged for review"))
                    continue
            resources.append(_with_id(resource, resource_id))
        return resources, current

    def _current(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        with self.services.store.read(snapshot=False) as connection:
            return self.services.store.get_current(connection, keys)

    def _unchanged(self, resources: list[dict[str, Any]], identity: Any,
                   current: dict[tuple[str, str], StoredResource]) -> dict[tuple[str, str], int]:
        """The resources whose stored current version (in `current`) has exactly this content already (a message
        resent, or the patient, professionals and history that every message about a patient repeats). Writing them
        again would only add an identical version, so, like a no-op update, they are not written: no new version,
        not in the transaction (nor its response and audit event). They are still validated with the rest of the
        message, the Provenance still names them (the message is a source of that content), and the record lists
        their current version (returned here: (type, id) -> version). Only where leaving them out changes no
        decision of the pipeline: the caller may update the type without a query restriction, no security label is
        involved, and the consent policy does not guard the type on write."""
        scopes = getattr(identity, "scopes", None) or ()
        candidates = [r for r in resources
                      if r["resourceType"] not in _ALWAYS_WRITTEN and not security_labels(r)
                      and access_for(scopes, r["resourceType"], "u").unrestricted]
        # the same bytes as the candidate: no security label can differ
        return {key: stored.version for key, stored, r in ((_key(r), current.get(_key(r)), r) for r in candidates)
                if stored is not None and as_current(stored, r) is not None}

    def _write(self, resources: list[dict[str, Any]], identity: Any, validated: Validated,
               lenient: bool = False, structured: Structured | None = None, structured_by: Any = None
               ) -> dict[str, Any]:
        """One transaction through the FHIR pipeline: every stage (scopes, consent, audit) applies. The write checks
        reuse the validation and the structure check just done (by `structured_by`) for every resource written as
        checked (not checked twice, and not inside the write transaction)."""
        services = replace(self.services, write_checks=prevalidated_write_checks(
            self.services.write_checks, self.services.validation, validated, lenient, structured, structured_by))
        it = interaction_for("POST", "", [], services.resource_types, {}, transaction_bundle(resources))
        result = services.pipeline.dispatch(RequestScope(services, identity=identity), it)
        return result.body_resource() or {}

    def _duplicate(self, record: IngestRecord, original: str, why: str) -> IngestResult:
        record.status, record.duplicate_of = DUPLICATE, original
        issue = Issue("information", "duplicate", f"{why} was already ingested as {original}; nothing was written")
        record.outcome = operation_outcome([issue])
        return IngestResult(record, issues=[issue])


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return resource["resourceType"], resource["id"]


def _identifier_text(identifier: dict[str, Any] | None) -> str | None:
    return f"{identifier.get('system')}|{identifier.get('value')}" if identifier else None


def _sender_reference(translation: Any, urls: dict[str, str]) -> dict[str, Any] | None:
    """The sending organisation as a reference when the message mapped it, else its identifier."""
    sender = translation.sender_organization
    if sender:
        for mapped in translation.resources:
            if mapped.resource_type == "Organization" and sender in mapped.resource.get("identifier", []):
                return {"reference": urls[mapped.full_url], "type": "Organization"}
    return sender


def _locations(response: dict[str, Any], resources: list[dict[str, Any]] | None = None,
               unchanged: dict[tuple[str, str], int] | None = None) -> list[str]:
    """Where each resource of the message is, in message order (the transaction writes them in another order):
    the locations the transaction answered, and for a resource left out as unchanged its current version."""
    written = [e["response"]["location"] for e in response.get("entry", [])
               if isinstance(e.get("response"), dict) and e["response"].get("location")]
    if resources is None:
        return written
    unchanged = unchanged or {}
    by_resource = {location.split("/_history/")[0]: location for location in written}
    ordered = [by_resource.pop(f"{t}/{i}", None) or f"{t}/{i}/_history/{unchanged[(t, i)]}"
               for t, i in map(_key, resources) if f"{t}/{i}" in by_resource or (t, i) in unchanged]
    return ordered + list(by_resource.values())


def _with_id(resource: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """The translated resource under its stable id (`resourceType` and `id` first, as stored)."""
    return {"resourceType": resource["resourceType"], "id": resource_id,
            **{k: v for k, v in resource.items() if k not in {"resourceType", "id"}}}
