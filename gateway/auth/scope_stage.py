"""The pipeline stage that checks the token's SMART scopes for every Interaction — HTTP requests and each
batch/transaction entry alike — and for every resource type a search response includes."""

from __future__ import annotations

from typing import Any

from gateway.auth.enforcement import ANY_TYPE, Forbidden, require_scope
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler

_SYSTEM_LEVEL = {kinds.SEARCH_SYSTEM: "search-type", kinds.HISTORY_SYSTEM: "history-type"}
_UNSCOPED = {kinds.CAPABILITIES, kinds.BATCH, kinds.TRANSACTION}  # bundles: each entry is checked on its own


def scope_stage(scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
    if it.kind not in _UNSCOPED:
        try:
            _check(scope.identity, it)
        except Forbidden as refusal:
            raise FhirError(403, "forbidden", str(refusal)) from None
    result = next_handler(scope, it)
    if it.kind in {kinds.SEARCH_TYPE, kinds.SEARCH_SYSTEM} and result.resource:
        _check_included_types(scope.identity, result.resource)
    return result


def _check(identity: Any, it: Interaction) -> None:
    if it.kind in _SYSTEM_LEVEL:
        require_scope(identity, ANY_TYPE, _SYSTEM_LEVEL[it.kind])
    elif it.kind == kinds.OPERATION:
        require_scope(identity, it.resource_type or ANY_TYPE, "read")
    else:
        require_scope(identity, it.resource_type or ANY_TYPE, it.kind)


def _check_included_types(identity: Any, bundle: dict[str, Any]) -> None:
    types = {
        entry["resource"]["resourceType"]
        for entry in bundle.get("entry", [])
        if entry.get("search", {}).get("mode") == "include" and "resource" in entry
    }
    for resource_type in sorted(types):
        try:
            require_scope(identity, resource_type, "read")
        except Forbidden as refusal:
            raise FhirError(403, "forbidden", f"_include/_revinclude of {resource_type}: {refusal}") from None
