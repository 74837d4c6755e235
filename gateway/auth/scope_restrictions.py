"""Query-restricted SMART v2 scopes (`system/Observation.rs?category=laboratory`): such a scope covers a resource
only when the resource matches the query.

Matching runs in memory on the same index rows the store writes for a resource (gateway/search/extract.py), so
"matches" means exactly what a search with that query finds. A restriction may use token, reference and uri
parameters without modifiers or prefixes — the kinds that have one unambiguous meaning for a single resource.
Anything else cannot be enforced safely, and a restriction that cannot be enforced covers nothing (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.search.query import Filter, ReferenceValue, TokenValue, UriValue, parse_search

Restriction = tuple[tuple[str, str], ...]
"""One alternative of an Access: (name, value) pairs, AND-ed."""

_TABLE_FOR = {"token": "token", "reference": "reference", "uri": "uri"}


class UnenforceableRestriction(ValueError):
    """The restriction uses a parameter, modifier or prefix this matcher cannot evaluate on one resource."""


class RestrictionMatcher:
    """Decides whether resources fall inside the query restrictions of the scopes that granted access."""

    def __init__(self, registry: SearchParameterRegistry) -> None:
        self.registry = registry
        self._parsed: dict[tuple[str, Restriction], list[Filter]] = {}

    def covers(self, resource: dict[str, Any], restrictions: Iterable[Restriction]) -> bool:
        """True when the resource matches at least one restriction (OR between them, AND inside one).
        An empty `restrictions` means unrestricted access and covers everything."""
        alternatives = list(restrictions)
        if not alternatives:
            return True
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return False
        rows = extract_index_rows(resource, self.registry)
        for restriction in alternatives:
            try:
                filters = self.filters(resource_type, restriction)
            except UnenforceableRestriction:
                continue
            if all(_filter_matches(item, rows) for item in filters):
                return True
        return False

    def search_params(self, resource_type: str, restrictions: tuple[Restriction, ...]) -> list[tuple[str, str]]:
        """The restriction as extra search parameters when a search can apply it itself (exactly one
        enforceable alternative); otherwise []. Results are still checked one by one with `covers`."""
        if len(restrictions) != 1:
            return []
        try:
            self.filters(resource_type, restrictions[0])
        except UnenforceableRestriction:
            return []
        return list(restrictions[0])

    def filters(self, resource_type: str, restriction: Restriction) -> list[Filter]:
        key = (resource_type, restriction)
        if key not in self._parsed:
            self._parsed[key] = self._parse(resource_type, restriction)
        return self._parsed[key]

    def _parse(self, resource_type: str, restriction: Restriction) -> list[Filter]:
        query = parse_search(resource_type, list(restriction), self.registry)
        if query.errors:
            raise UnenforceableRestriction("; ".join(f"{error.param}: {error.message}" for error in query.errors))
        if len(query.filters) != len(restriction):
            raise UnenforceableRestriction(f"only search parameters may restrict a scope, not {restriction!r}")
        for item in query.filters:
            if item.chain or item.modifier is not None or item.param.type not in _TABLE_FOR:
                raise UnenforceableRestriction(f"a scope cannot be restricted by {item.name!r}")
            if any(value.prefix != "eq" for value in item.values):
                raise UnenforceableRestriction(f"a scope restriction cannot use a prefix: {item.name!r}")
        return query.filters


def _filter_matches(item: Filter, rows: dict[str, list[dict[str, Any]]]) -> bool:
    candidates = [row for row in rows.get(_TABLE_FOR[item.param.type], []) if row["param"] == item.index_param]
    return any(_value_matches(value.value, row) for value in item.values for row in candidates)


def _value_matches(value: object, row: dict[str, Any]) -> bool:
    if isinstance(value, TokenValue):
        if value.text is not None:
            return False
        if value.code is not None and row.get("code") != value.code:
            return False
        return not value.has_system or row.get("system") == value.system
    if isinstance(value, ReferenceValue):
        if value.url is not None:
            return row.get("url") == value.url
        if row.get("target_id") != value.target_id:
            return False
        return value.target_type is None or row.get("target_type") == value.target_type
    if isinstance(value, UriValue):
        return row.get("value") == value.uri
    return False
