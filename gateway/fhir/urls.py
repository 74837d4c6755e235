"""Map a FHIR RESTful URL (relative to the base) and method to an Interaction — for HTTP requests and for
Bundle entries alike, so both follow exactly the same rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway.fhir import interaction as kinds
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction


def parse_relative_url(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    return parts.path.strip("/"), parse_qsl(parts.query, keep_blank_values=True)


def interaction_for(
    method: str,
    path: str,
    params: list[tuple[str, str]],
    resource_types: frozenset[str],
    headers: Mapping[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> Interaction:
    method = method.upper()
    segments = [segment for segment in path.strip("/").split("/") if segment]
    make = lambda kind, **kw: Interaction(kind, method, params=params, headers=headers or {}, body=body, **kw)  # noqa: E731

    if not segments:
        if method == "GET":
            return make(kinds.SEARCH_SYSTEM)
        if method == "POST":
            bundle_type = (body or {}).get("type")
            if (body or {}).get("resourceType") != "Bundle" or bundle_type not in {"batch", "transaction"}:
                raise FhirError(400, "invalid", "POST to the base needs a Bundle of type batch or transaction")
            return make(kinds.TRANSACTION if bundle_type == "transaction" else kinds.BATCH)
        raise _method_not_allowed(method, "the base URL")
    head = segments[0]
    if head == "metadata" and len(segments) == 1:
        _only(method, {"GET"}, "metadata")
        return make(kinds.CAPABILITIES)
    if head == "_history" and len(segments) == 1:
        _only(method, {"GET"}, "_history")
        return make(kinds.HISTORY_SYSTEM)
    if head == "_search" and len(segments) == 1:
        _only(method, {"POST"}, "_search")
        return make(kinds.SEARCH_SYSTEM)
    if head.startswith("$") and len(segments) == 1:
        return make(kinds.OPERATION, operation=head[1:])
    if head not in resource_types:
        raise FhirError(404, "not-found", f"'{head}' is not a resource type this server knows")
    rest = segments[1:]
    if not rest:
        kind = {"GET": kinds.SEARCH_TYPE, "POST": kinds.CREATE, "PUT": kinds.UPDATE, "DELETE": kinds.DELETE}.get(method)
        if kind is None:
            raise _method_not_allowed(method, head)
        return make(kind, resource_type=head)
    second = rest[0]
    if second == "_search" and len(rest) == 1:
        _only(method, {"POST"}, f"{head}/_search")
        return make(kinds.SEARCH_TYPE, resource_type=head)
    if second == "_history" and len(rest) == 1:
        _only(method, {"GET"}, f"{head}/_history")
        return make(kinds.HISTORY_TYPE, resource_type=head)
    if second.startswith("$") and len(rest) == 1:
        return make(kinds.OPERATION, resource_type=head, operation=second[1:])
    resource_id = second
    if len(rest) == 1:
        kind = {"GET": kinds.READ, "PUT": kinds.UPDATE, "DELETE": kinds.DELETE}.get(method)
        if kind is None:
            raise _method_not_allowed(method, f"{head}/{resource_id}")
        return make(kind, resource_type=head, id=resource_id)
    if rest[1] == "_history" and len(rest) == 2:
        _only(method, {"GET"}, "_history")
        return make(kinds.HISTORY_INSTANCE, resource_type=head, id=resource_id)
    if rest[1] == "_history" and len(rest) == 3:
        _only(method, {"GET"}, "_history")
        return make(kinds.VREAD, resource_type=head, id=resource_id, version=rest[2])
    if rest[1].startswith("$") and len(rest) == 2:
        return make(kinds.OPERATION, resource_type=head, id=resource_id, operation=rest[1][1:])
    raise FhirError(404, "not-found", f"'{path}' is not a FHIR RESTful URL")


def _only(method: str, allowed: set[str], what: str) -> None:
    if method not in allowed:
        raise _method_not_allowed(method, what)


def _method_not_allowed(method: str, what: str) -> FhirError:
    return FhirError(405, "not-supported", f"{method} is not supported on {what}")
