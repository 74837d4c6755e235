"""The audit trail through the FHIR API: `GET /fhir/AuditEvent?patient=...` (the patient access log, Wabvpz
15d/15e) and `GET /fhir/AuditEvent/{id}` for authorised roles, appending by administrative clients, and never an
update, delete or history — the chain is the only copy and it is append-only.

A pipeline stage placed after the scope check and before the consent stage: AuditEvents are served from the
audit log (not from the resource store) on their own legal basis (NEN 7513 review, the patient's right of access),
and the audit stage outside it logs who read whose access log. Other resource types pass through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from gateway.audit.instants import date_bounds, instant_span, recorded_key
from gateway.audit.log import AuditLog
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError, not_found
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.ids import uuid7

AUDIT_EVENT = "AuditEvent"
CONSENT_RECORDS = "consent.records"  # read by the audit stage (see gateway.audit.stage)
_PASSTHROUGH = {"_format", "_pretty"}
_SEARCH_PARAMS = {"patient", "date", "_count", "_offset"}
_IMMUTABLE = "AuditEvents cannot be updated or deleted through the API / AuditEvents kunnen niet worden gewijzigd"


@dataclass
class LogReadRecord:
    """What the audit stage needs to log a read of the audit trail (the attributes of a consent record)."""

    patients: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    patient_data_target: bool = True
    decision_id: str | None = None
    request: Any = None
    request_decision: Any = None
    decisions: list[Any] = field(default_factory=list)


class AuditEventAccess:
    def __init__(
        self,
        log: AuditLog,
        reader_roles: Iterable[str],
        admin_roles: Iterable[str],
        clock: Callable[[], datetime],
        default_count: int = 50,
        max_count: int = 1000,
    ) -> None:
        self.log = log
        self.reader_roles = frozenset(reader_roles)
        self.admin_roles = frozenset(admin_roles)
        self.clock = clock
        self.default_count = default_count
        self.max_count = max_count

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        if it.resource_type != AUDIT_EVENT or it.kind == kinds.OPERATION:
            return next_handler(scope, it)
        if it.kind in {kinds.UPDATE, kinds.DELETE}:
            raise FhirError(403, "forbidden", _IMMUTABLE)
        if it.kind == kinds.CREATE:
            return self._create(scope, it)
        self._require_role(scope, self.reader_roles | self.admin_roles, "read the audit trail")
        if it.kind in {kinds.READ, kinds.VREAD}:
            return self._read(scope, it)
        if it.kind == kinds.SEARCH_TYPE:
            return self._search(scope, it)
        raise FhirError(400, "not-supported", "AuditEvents have no history: they are never changed")

    # -- reading -------------------------------------------------------------------------------------------

    def _read(self, scope: RequestScope, it: Interaction) -> Result:
        with scope.reading() as connection:
            event = self.log.get(connection, it.id or "")
        if event is None or (it.version is not None and it.version != "1"):
            raise not_found(AUDIT_EVENT, it.id)
        self._note(scope, it, _patients_of(event), [event])
        return Result(200, resource=event, headers={"ETag": 'W/"1"'})

    def _search(self, scope: RequestScope, it: Interaction) -> Result:
        params = [(name, value) for name, value in it.params if name not in _PASSTHROUGH]
        unknown = sorted({name for name, _ in params} - _SEARCH_PARAMS)
        if unknown:
            raise FhirError(400, "not-supported", f"AuditEvent search supports patient, date, _count and _offset, "
                            f"not {', '.join(unknown)}", [unknown[0]])
        patients = [_patient_id(v, scope.base_url) for name, raw in params if name == "patient" for v in raw.split(",")]
        if not patients or not all(patients):
            raise FhirError(400, "required", "AuditEvent search needs patient=Patient/<id> (the patient access log)",
                            ["patient"])
        since, before = _bounds([value for name, value in params if name == "date"])
        count = min(_number(params, "_count", self.default_count), self.max_count)
        offset = _number(params, "_offset", 0)
        with scope.reading() as connection:
            page = self.log.search(connection, patients, since, before, offset, count)
        self._note(scope, it, patients, page.events)
        return Result(200, resource=self._bundle(scope, params, page.total, page.events, offset, count))

    def _bundle(
        self, scope: RequestScope, params: list[tuple[str, str]], total: int, events: list[dict[str, Any]],
        offset: int, count: int,
    ) -> dict[str, Any]:
        base = f"{scope.base_url}/{AUDIT_EVENT}"
        kept = [(n, v) for n, v in params if n not in {"_offset", "_count"}]
        links = [{"relation": "self", "url": f"{base}?{urlencode([*kept, ('_count', count), ('_offset', offset)])}"}]
        if offset + len(events) < total:
            following = urlencode([*kept, ("_count", count), ("_offset", offset + count)])
            links.append({"relation": "next", "url": f"{base}?{following}"})
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {"fullUrl": f"{base}/{event['id']}", "resource": event, "search": {"mode": "match"}}
                for event in events
            ],
        }

    # -- appending -------------------------------------------------------------------------------------------

    def _create(self, scope: RequestScope, it: Interaction) -> Result:
        self._require_role(scope, self.admin_roles, "add AuditEvents")
        body = it.body
        if body is None:
            raise FhirError(400, "required", "the request has no AuditEvent body")
        scope.services.write_checks.check(body, AUDIT_EVENT, None, False)
        span = instant_span(str(body.get("recorded", "")))
        if span is None:
            raise FhirError(400, "required", "AuditEvent.recorded must be an instant with a time zone",
                            ["AuditEvent.recorded"])
        event = {**body, "id": uuid7()}
        event["meta"] = {**body.get("meta", {}), "versionId": "1", "lastUpdated": recorded_key(self.clock())}
        patients = _patients_of(event)
        with scope.writing() as connection:
            self.log.append(connection, event, "Import", patients, getattr(scope.identity, "client_id", None),
                            recorded=recorded_key(span[0]))
        self._note(scope, it, patients, [event])
        headers = {"Location": f"{scope.base_url}/{AUDIT_EVENT}/{event['id']}/_history/1", "ETag": 'W/"1"'}
        return Result(201, resource=None if it.prefer("return") == "minimal" else event, headers=headers)

    # -- helpers -----------------------------------------------------------------------------------------------

    def _require_role(self, scope: RequestScope, roles: frozenset[str], what: str) -> None:
        role = getattr(scope.identity, "role", None)
        if role not in roles:
            raise FhirError(403, "forbidden", f"only clients with role {' or '.join(sorted(roles))} may {what}; "
                            f"this token has role {role or 'none'}")

    def _note(self, scope: RequestScope, it: Interaction, patients: list[str], events: list[dict[str, Any]]) -> None:
        record = LogReadRecord(sorted(set(patients)), [f"{AUDIT_EVENT}/{event['id']}" for event in events])
        scope.state.setdefault(CONSENT_RECORDS, {})[id(it)] = record


def _patient_id(value: str, base_url: str) -> str:
    value = value.strip()
    if value.startswith(f"{base_url}/Patient/"):
        return value.removeprefix(f"{base_url}/Patient/")
    return value.removeprefix("Patient/") if "/" not in value.removeprefix("Patient/") else value


def _patients_of(event: dict[str, Any]) -> list[str]:
    found = []
    for entity in event.get("entity", []):
        reference = str(entity.get("what", {}).get("reference", ""))
        if reference.startswith("Patient/") and reference.count("/") == 1:
            found.append(reference.removeprefix("Patient/"))
    return sorted(set(found))


def _bounds(values: list[str]) -> tuple[str | None, str | None]:
    since: str | None = None
    before: str | None = None
    for value in values:
        bounds = date_bounds(value)
        if bounds is None:
            raise FhirError(400, "invalid", f"date={value}: expected [ge|gt|le|lt|eq]<FHIR date or instant>", ["date"])
        low, high = bounds
        since = max(filter(None, [since, low]), default=None)
        before = min(filter(None, [before, high]), default=None)
    return since, before


def _number(params: list[tuple[str, str]], name: str, default: int) -> int:
    values = [value for key, value in params if key == name]
    if not values:
        return default
    if not values[-1].isdigit():
        raise FhirError(400, "invalid", f"{name} must be a non-negative whole number", [name])
    return int(values[-1])
