"""search-type and search-system: a `searchset` Bundle with matches, `_include`/`_revinclude`d resources,
opaque paging links and the requested `_total`, `_summary` and `_elements`.

Paging without `_sort` is keyset paging on the resource's storage key (a page never shifts when others
write); with `_sort` it is offset paging inside a snapshot of the query."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection

from gateway.fhir.context import RequestScope
from gateway.fhir.elements import SummaryElements, apply_elements, apply_summary
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.paging import decode_cursor, encode_cursor
from gateway.search.query import parse_search
from gateway.store import search_sql
from gateway.store.locks import lock_condition
from gateway.store.repository import StoredResource

_PASSTHROUGH = {"_format", "_pretty"}


def find_matches(
    scope: RequestScope, connection: Connection, resource_type: str, params: list[tuple[str, str]], limit: int = 2
) -> list[StoredResource]:
    """Matches of a condition (conditional create/update/delete, conditional references): at most `limit`."""
    query = parse_search(resource_type, _relative(scope, params), scope.services.search)
    if query.errors:
        error = query.errors[0]
        raise FhirError(400, error.code, f"condition: {error.message}", [error.param])
    lock_condition(connection, resource_type, _relative(scope, params))  # other instances deciding the same wait
    keys = search_sql.match_keys(connection, query, limit=limit)
    return scope.services.store.get_many(connection, keys)


def _relative(scope: RequestScope, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """References to this server may be given absolute (`<base>/Patient/1`); the index holds them relative."""
    prefix = scope.base_url + "/"
    return [(name, value.replace(prefix, "")) for name, value in params]


def search(scope: RequestScope, it: Interaction) -> Result:
    services = scope.services
    params = [(name, value) for name, value in it.params if name not in _PASSTHROUGH]
    cursor = {}
    if any(name == "_page" for name, _ in params):
        cursor = decode_cursor(next(value for name, value in params if name == "_page"))
        params = [(name, value) for name, value in params if name != "_page"]
    params = _relative(scope, params)
    query = parse_search(it.resource_type, params, services.search)
    outcome_issues: list[Issue] = []
    if query.errors:
        if it.prefer("handling") == "lenient" and all(e.ignorable for e in query.errors):
            outcome_issues = [Issue("warning", e.code, f"ignored: {e.message}", [e.param]) for e in query.errors]
            query = parse_search(
                it.resource_type, [p for p in params if p[0] not in {e.param for e in query.errors}], services.search
            )
        if query.errors:
            first = query.errors[0]
            issues = [Issue("error", e.code, e.message, [e.param]) for e in query.errors]
            raise FhirError(400, first.code, first.message, issues=issues)
    count = min(
        query.count if query.count is not None else services.settings.default_count, services.settings.max_count
    )
    counted = query.total == "accurate" or query.summary == "count"
    # one statement (a keyset page, nothing counted or included) needs no snapshot: no BEGIN/COMMIT around it
    single = not query.sort and not query.includes and not query.revincludes and not counted
    with scope.reading(snapshot=not single) as connection:
        total = None
        if counted:
            total = search_sql.count_matches(connection, query)
        if query.summary == "count":
            matches, next_state = [], None
        else:
            matches, next_state = _page(scope, connection, query, cursor, count)
            if total is None and query.total != "none" and not cursor and next_state is None:
                total = len(matches)  # everything fits on the first page: the total is known for free
        keys = [stored.res_key for stored in matches]
        included = search_sql.include_keys(connection, query, keys) if keys else []
        if included:
            matched = set(keys)
            includes = services.store.get_many(connection, [k for k in included if k not in matched])
        else:
            includes = []
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = _links(scope, it, params, cursor, next_state, count)
    summary = SummaryElements(services.packages) if query.summary in {"true"} else None
    entries = [_entry(scope, stored, "match", query, summary) for stored in matches]
    entries += [_entry(scope, stored, "include", query, summary) for stored in includes]
    versions: dict[int, tuple[dict[str, Any], StoredResource]] = {}
    if not query.elements and query.summary not in {"true", "text", "data"}:  # the stored content, unchanged
        versions = {id(entry["resource"]): (entry["resource"], stored)
                    for entry, stored in zip(entries, [*matches, *includes], strict=True)}
    if outcome_issues:
        entries.append({"resource": operation_outcome(outcome_issues), "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return Result(200, resource=bundle, versions=versions)


def _page(
    scope: RequestScope, connection: Connection, query: Any, cursor: dict[str, Any], count: int
) -> tuple[list[StoredResource], dict | None]:
    """Fetch one page (+1 to know whether there is a next one)."""
    if query.sort:
        offset = int(cursor.get("offset", 0))
        keys = search_sql.match_keys(connection, query, limit=count + 1, offset=offset, max_key=cursor.get("max_key"))
        max_key = cursor.get("max_key") or search_sql.max_key(connection)
        state = {"offset": offset + count, "max_key": max_key, "prev": offset} if len(keys) > count else None
        return scope.services.store.get_many(connection, keys[:count]), state
    after = cursor.get("after")
    # keyset page: the matches and their stored bodies in one statement
    rows = search_sql.match_rows(connection, query, limit=count + 1, after_key=after)
    state = {"after": rows[count - 1][0]} if len(rows) > count and count > 0 else None
    return [StoredResource(*row) for row in rows[:count]], state


def _links(
    scope: RequestScope,
    it: Interaction,
    params: list[tuple[str, str]],
    cursor: dict[str, Any],
    next_state: dict | None,
    count: int,
) -> list[dict[str, str]]:
    path = f"{scope.base_url}/{it.resource_type}" if it.resource_type else scope.base_url
    plain = [(name, value) for name, value in params if name != "_count"] + [("_count", str(count))]

    def url(state: dict[str, Any] | None) -> str:
        extra = [("_page", encode_cursor(state))] if state else []
        return f"{path}?{urlencode(plain + extra)}"

    links = [{"relation": "self", "url": url(cursor or None)}]
    if next_state:
        links.append({"relation": "next", "url": url(next_state)})
    if cursor.get("prev") is not None:
        links.append(
            {
                "relation": "previous",
                "url": url(
                    {
                        **cursor,
                        "offset": cursor["prev"],
                        "prev": max(0, cursor["prev"] - count) if cursor["prev"] else None,
                    }
                ),
            }
        )
    return links


def _entry(
    scope: RequestScope, stored: StoredResource, mode: str, query: Any, summary: SummaryElements | None
) -> dict[str, Any]:
    resource = stored.resource()
    if query.elements:
        resource = apply_elements(resource, query.elements)
    elif query.summary in {"true", "text", "data"} and summary is not None:
        resource = apply_summary(resource, query.summary, summary)
    elif query.summary in {"text", "data"}:
        resource = apply_summary(resource, query.summary, None)  # type: ignore[arg-type]
    return {"fullUrl": f"{scope.base_url}/{stored.type}/{stored.id}", "resource": resource, "search": {"mode": mode}}
