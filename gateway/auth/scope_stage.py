"""The pipeline stage that checks the token's SMART scopes for every Interaction — HTTP requests and each
batch/transaction entry alike — and for every resource type a search response includes.

Query-restricted scopes (`system/Observation.rs?category=laboratory`) are enforced on the resources themselves:
a written resource (and, for update/delete, the current version) must match the restriction, and every resource
a response discloses is checked — non-matching search matches and includes are removed, a non-matching read is
refused. A search with one restriction also gets it added as a filter, so paging and totals stay exact.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from gateway.auth.enforcement import ANY_TYPE, Forbidden, require_scope
from gateway.auth.scope_restrictions import RestrictionMatcher
from gateway.auth.scopes import Access
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler
from gateway.search.definitions import SearchParameterRegistry

_SYSTEM_LEVEL = {kinds.SEARCH_SYSTEM: "search-type", kinds.HISTORY_SYSTEM: "history-type"}
_UNSCOPED = {kinds.CAPABILITIES, kinds.BATCH, kinds.TRANSACTION}  # bundles: each entry is checked on its own
_SEARCHES = {kinds.SEARCH_TYPE, kinds.SEARCH_SYSTEM}
_CHECK_CURRENT = {kinds.UPDATE, kinds.DELETE}
OUTSIDE = "the resource is outside the query restriction of the granted scope"


class ScopeStage:
    def __init__(self, registry: SearchParameterRegistry) -> None:
        self.matcher = RestrictionMatcher(registry)

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        if it.kind in _UNSCOPED:
            return next_handler(scope, it)
        access = _scope_access(scope.identity, *_checked_as(it))
        if access.restrictions:
            it = self._before_restricted(scope, it, access)
        result = next_handler(scope, it)
        if access.restrictions:
            self._after_restricted(it, access, result)
        if it.kind in _SEARCHES and result.resource:
            self._check_included(scope.identity, result.resource)
        return result

    def _before_restricted(self, scope: RequestScope, it: Interaction, access: Access) -> Interaction:
        if it.kind == kinds.OPERATION or it.resource_type is None:
            raise FhirError(403, "forbidden", "operations and system-level interactions need an unrestricted scope")
        if it.body is not None and it.kind in {kinds.CREATE, kinds.UPDATE}:
            self._require_covered(it.body, access)
        if it.kind in _CHECK_CURRENT:
            if it.id is None:
                raise FhirError(403, "forbidden", "conditional updates and deletes need an unrestricted scope")
            with scope.reading() as connection:
                current = scope.services.store.get(connection, it.resource_type, it.id)
            if current is not None and not current.deleted and current.body is not None:
                self._require_covered(current.resource(), access)
        if it.kind == kinds.SEARCH_TYPE:
            extra = self.matcher.search_params(it.resource_type, access.restrictions)
            if extra:
                it = replace(it, params=[*it.params, *extra])
        return it

    def _after_restricted(self, it: Interaction, access: Access, result: Result) -> None:
        body = result.body_resource()
        if body is None or it.kind in {kinds.CREATE, kinds.UPDATE, kinds.DELETE}:
            return  # a write's echo is the body checked before the write
        if body.get("resourceType") == "Bundle" and it.kind not in {kinds.READ, kinds.VREAD}:
            kept = self._filter_entries(body, _is_disclosed_match, access)
            if kept is not None:
                result.resource, result.stored = kept, None
            return
        self._require_covered(body, access)

    def _check_included(self, identity: Any, bundle: dict[str, Any]) -> None:
        included = [entry for entry in bundle.get("entry", []) if _is_include(entry)]
        for resource_type in sorted({entry["resource"]["resourceType"] for entry in included}):
            access = _scope_access(identity, resource_type, "read", f"_include/_revinclude of {resource_type}: ")
            if access.restrictions:
                self._filter_entries(bundle, partial(_is_include_of, resource_type), access, keep_total=True)

    def _filter_entries(
        self, bundle: dict[str, Any], applies: Any, access: Access, keep_total: bool = False
    ) -> dict[str, Any] | None:
        """Remove the entries `applies` selects whose resource the restriction does not cover; None when
        nothing had to go. `total` counts matches only, so removing includes leaves it alone."""
        entries = bundle.get("entry", [])
        kept = [entry for entry in entries if not applies(entry) or self._entry_covered(entry, access)]
        if len(kept) == len(entries):
            return None
        bundle["entry"] = kept
        if not kept:
            del bundle["entry"]
        if not keep_total:
            bundle.pop("total", None)
        return bundle

    def _entry_covered(self, entry: dict[str, Any], access: Access) -> bool:
        return "resource" in entry and self.matcher.covers(entry["resource"], access.restrictions)

    def _require_covered(self, resource: dict[str, Any], access: Access) -> None:
        if not self.matcher.covers(resource, access.restrictions):
            raise FhirError(403, "forbidden", OUTSIDE)


def _checked_as(it: Interaction) -> tuple[str, str]:
    """(resource type, interaction) the scopes must cover for this Interaction."""
    if it.kind in _SYSTEM_LEVEL:
        return ANY_TYPE, _SYSTEM_LEVEL[it.kind]
    if it.kind == kinds.OPERATION:
        return it.resource_type or ANY_TYPE, "read"
    return it.resource_type or ANY_TYPE, it.kind


def _scope_access(identity: Any, resource_type: str, interaction: str, prefix: str = "") -> Access:
    try:
        return require_scope(identity, resource_type, interaction)
    except Forbidden as refusal:
        raise FhirError(403, "forbidden", f"{prefix}{refusal}") from None


def _is_disclosed_match(entry: dict[str, Any]) -> bool:
    """A search match or a history version (outcome notes and includes are judged elsewhere)."""
    return entry.get("search", {}).get("mode") not in {"include", "outcome"}


def _is_include(entry: dict[str, Any]) -> bool:
    return entry.get("search", {}).get("mode") == "include" and "resource" in entry


def _is_include_of(resource_type: str, entry: dict[str, Any]) -> bool:
    return _is_include(entry) and entry["resource"]["resourceType"] == resource_type
