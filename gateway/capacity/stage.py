"""The capacity pipeline stages.

- `CapacityChanges` (outermost, in front of the audit stage that opens the write transaction): collects the
  capacity resources a request or a whole transaction Bundle wrote and hands them to the notification hub
  *after* the commit — never before, and not at all when the request failed.
- `CapacityWriteRules` (innermost, after scopes and consent): checks capacity Slots/Schedules and
  Subscriptions as they are written, so a refused write is audited like any other refusal."""

from __future__ import annotations

from gateway.capacity.hub import WATCHED, SubscriptionHub
from gateway.capacity.rules import check, is_capacity
from gateway.capacity.subscriptions import check_subscription
from gateway.capacity.terms import CapacityTerms
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler

_PENDING = "capacity.pending"
_DEPTH = "capacity.depth"
_WRITES = frozenset({kinds.CREATE, kinds.UPDATE, kinds.DELETE})


class CapacityChanges:
    def __init__(self, hub: SubscriptionHub) -> None:
        self.hub = hub

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        depth = scope.state.get(_DEPTH, 0)
        outermost = depth == 0 and scope.connection is None
        pending: list[tuple[str, str]] = scope.state.setdefault(_PENDING, [])
        scope.state[_DEPTH] = depth + 1
        try:
            result = next_handler(scope, it)
        except Exception:
            if outermost:
                scope.state.pop(_PENDING, None)
            raise
        finally:
            scope.state[_DEPTH] = depth
        if it.kind in _WRITES and it.resource_type in WATCHED | {"Subscription"}:
            resource_id = _written_id(result) or it.id
            if resource_id:
                pending.append((it.resource_type, resource_id))
        if outermost:
            self._flush(scope.state.pop(_PENDING, []))
        return result

    def _flush(self, changes: list[tuple[str, str]]) -> None:
        if any(kind == "Subscription" for kind, _ in changes):
            self.hub.reload()
        self.hub.publish([change for change in changes if change[0] != "Subscription"])


class CapacityWriteRules:
    def __init__(self, terms: CapacityTerms) -> None:
        self.terms = terms

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        if it.kind in {kinds.CREATE, kinds.UPDATE} and it.body is not None:
            body = it.body
            if it.resource_type == "Subscription":
                check_subscription(body, scope.services, getattr(scope.identity, "client_id", None))
            elif it.resource_type in {"Slot", "Schedule"} and is_capacity(body):
                issues = check(body, self.terms)
                if issues:
                    raise FhirError(422, issues[0].code, issues[0].diagnostics, issues=issues)
        return next_handler(scope, it)


def _written_id(result: Result) -> str | None:
    """The id a write produced (also with Prefer: return=minimal, from the Location header)."""
    if result.stored is not None:
        return result.stored.id
    location = result.headers.get("Location") or result.headers.get("Content-Location") or ""
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 else None
