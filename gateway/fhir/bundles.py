"""batch and transaction Bundles (POST [base]).

A transaction runs all entries on one database connection and commits only when every entry succeeded;
`urn:uuid:` fullUrls and conditional references (`Patient?identifier=...`) are resolved before any entry is
processed, in the order the spec prescribes (DELETE, POST, PUT/PATCH, GET); the response lists entries in
request order. A batch runs each entry on its own and reports each outcome."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.headers import version_headers
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.search_handler import find_matches
from gateway.fhir.urls import interaction_for, parse_relative_url
from gateway.store.repository import new_id

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
}


def batch(scope: RequestScope, it: Interaction) -> Result:
    entries = _entries(it.body or {})
    responses: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            entry_it = _entry_interaction(scope, entry, index)
            result = scope.services.pipeline.dispatch(scope.child(None), entry_it)
            responses.append(_response_entry(scope, result, _minimal(it)))
        except FhirError as error:
            responses.append({"response": {"status": _status_line(error.status), "outcome": error.outcome()}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "batch-response"}
    if responses:  # FHIR has no empty arrays (an empty batch answered in XML gave a 500)
        bundle["entry"] = responses
    return Result(200, resource=bundle)


def transaction(scope: RequestScope, it: Interaction) -> Result:
    entries = _entries(it.body or {})
    results: list[Result | None] = [None] * len(entries)
    with scope.writing() as connection:  # the audit stage's write transaction when it opened one
        tx = scope.child(connection)
        interactions = [_entry_interaction(scope, entry, index) for index, entry in enumerate(entries)]
        _check_unique_targets(interactions)
        references = _resolve_identities(tx, interactions)
        for entry_it in interactions:
            # a stored Bundle (document, message, collection) keeps its own internal urn:uuid references
            if entry_it.body is not None and entry_it.body.get("resourceType") != "Bundle":
                _rewrite_references(tx, entry_it.body, references)
        order = sorted(range(len(entries)), key=lambda i: _ORDER.get(interactions[i].method, 9))
        for index in order:
            entry_it = interactions[index]
            try:
                results[index] = _run_entry(tx, entry_it)
            except FhirError as error:
                for issue in error.issues:
                    issue.diagnostics = (
                        f"transaction entry {index} ({entry_it.method} {entry_it.path}): {issue.diagnostics}"
                    )
                    issue.expression = issue.expression or [f"Bundle.entry[{index}]"]
                raise
    bundle = {"resourceType": "Bundle", "type": "transaction-response"}
    answered = [_response_entry(scope, result, _minimal(it)) for result in results if result is not None]
    if answered:  # FHIR has no empty arrays
        bundle["entry"] = answered
    return Result(200, resource=bundle)


def replaced_targets(scope: RequestScope, bundle: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, id) of the resources a transaction Bundle's entries update or delete, read exactly as `transaction`
    reads its entries; an entry it would refuse is left out (the transaction refuses it)."""
    targets = []
    entries = bundle.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        try:
            entry_it = _entry_interaction(scope, entry, index)
        except FhirError:
            continue
        if entry_it.kind in {kinds.UPDATE, kinds.DELETE} and entry_it.resource_type and entry_it.id:
            targets.append((entry_it.resource_type, entry_it.id))
    return targets


def _run_entry(tx: RequestScope, entry_it: Interaction) -> Result:
    if entry_it.existing is not None:  # conditional create that matched: nothing to write
        return entry_it.existing
    return tx.services.pipeline.dispatch(tx, entry_it)


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError(400, "structure", "Bundle.entry must be an array", ["Bundle.entry"])
    return entries


def _entry_interaction(scope: RequestScope, entry: Any, index: int) -> Interaction:
    where = [f"Bundle.entry[{index}]"]
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise FhirError(400, "required", f"entry {index} has no request", where)
    request = entry["request"]
    method, url = request.get("method"), request.get("url")
    if method not in _ORDER or not isinstance(url, str) or not url:
        raise FhirError(
            400, "invalid", f"entry {index} needs request.method (GET/POST/PUT/DELETE) and request.url", where
        )
    if url.startswith(scope.base_url + "/"):
        url = url[len(scope.base_url) + 1 :]
    path, params = parse_relative_url(url)
    headers = {}
    for field_name, header in (
        ("ifNoneExist", "if-none-exist"),
        ("ifMatch", "if-match"),
        ("ifNoneMatch", "if-none-match"),
        ("ifModifiedSince", "if-modified-since"),
    ):
        if isinstance(request.get(field_name), str):
            headers[header] = request[field_name]
    body = entry.get("resource")
    if method in {"POST", "PUT"} and not isinstance(body, dict):
        raise FhirError(400, "required", f"entry {index} ({method}) has no resource", where)
    entry_it = interaction_for(
        method, path, params, scope.services.resource_types, headers, body if method in {"POST", "PUT"} else None
    )
    if entry_it.kind in {kinds.BATCH, kinds.TRANSACTION}:
        raise FhirError(400, "not-supported", f"entry {index}: nested batch/transaction is not allowed", where)
    full_url = entry.get("fullUrl")
    entry_it.full_url = full_url if isinstance(full_url, str) else None
    return entry_it


def _check_unique_targets(interactions: list[Interaction]) -> None:
    seen: dict[str, int] = {}
    for index, entry_it in enumerate(interactions):
        if entry_it.kind in {kinds.UPDATE, kinds.DELETE} and entry_it.id:
            key = f"{entry_it.resource_type}/{entry_it.id}"
            if key in seen:
                raise FhirError(400, "duplicate", f"entries {seen[key]} and {index} both change {key}")
            seen[key] = index


def _resolve_identities(tx: RequestScope, interactions: list[Interaction]) -> dict[str, str]:
    """fullUrl -> `Type/id` for every entry that creates or updates, assigning ids to creates up front."""
    references: dict[str, str] = {}
    assert tx.connection is not None
    for entry_it in interactions:
        full_url = entry_it.full_url
        if entry_it.kind == kinds.CREATE:
            assert entry_it.resource_type
            condition = entry_it.header("if-none-exist")
            target = None
            if condition:
                matches = find_matches(
                    tx,
                    tx.connection,
                    entry_it.resource_type,
                    parse_qsl(condition.split("?")[-1], keep_blank_values=True),
                )
                if len(matches) > 1:
                    raise FhirError(
                        412, "multiple-matches", f"ifNoneExist '{condition}' matches {len(matches)} resources"
                    )
                if matches:
                    stored = matches[0]
                    target = stored.id
                    entry_it.existing = Result(
                        200,
                        stored=stored,
                        headers=version_headers(
                            tx.base_url, stored.type, stored.id, stored.version, stored.last_updated
                        ),
                    )
            entry_it.id = target or new_id()
            entry_it.headers = {k: v for k, v in entry_it.headers.items() if k != "if-none-exist"}
            if full_url:
                references[full_url] = f"{entry_it.resource_type}/{entry_it.id}"
        elif entry_it.kind == kinds.UPDATE and full_url:
            if entry_it.id:
                references[full_url] = f"{entry_it.resource_type}/{entry_it.id}"
            else:
                assert entry_it.resource_type
                matches = find_matches(tx, tx.connection, entry_it.resource_type, entry_it.params)
                if len(matches) == 1:
                    references[full_url] = f"{entry_it.resource_type}/{matches[0].id}"
    return references


def _rewrite_references(tx: RequestScope, node: Any, references: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = _resolve_reference(tx, value, references)
            else:
                _rewrite_references(tx, value, references)
    elif isinstance(node, list):
        for item in node:
            _rewrite_references(tx, item, references)


def _resolve_reference(tx: RequestScope, value: str, references: dict[str, str]) -> str:
    if value in references:
        return references[value]
    if value.startswith("urn:uuid:") or value.startswith("urn:oid:"):
        raise FhirError(400, "not-found", f"reference '{value}' points at no entry of this transaction")
    if "?" in value and not value.startswith("http"):
        resource_type, _, query = value.partition("?")
        if resource_type not in tx.services.resource_types:
            raise FhirError(400, "invalid", f"conditional reference '{value}' names an unknown type")
        assert tx.connection is not None
        matches = find_matches(tx, tx.connection, resource_type, parse_qsl(query, keep_blank_values=True))
        if len(matches) != 1:
            raise FhirError(
                412 if matches else 404,
                "multiple-matches" if matches else "not-found",
                f"conditional reference '{value}' matches {len(matches)} resources (needs exactly one)",
            )
        return f"{resource_type}/{matches[0].id}"
    return value


def _status_line(status: int) -> str:
    return f"{status} {_STATUS_TEXT.get(status, '')}".strip()


def _minimal(it: Interaction) -> bool:
    return it.prefer("return") == "minimal"


def _response_entry(scope: RequestScope, result: Result, minimal: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _status_line(result.status)}
    if "Location" in result.headers:
        response["location"] = result.headers["Location"].removeprefix(scope.base_url + "/")
    elif "Content-Location" in result.headers:
        response["location"] = result.headers["Content-Location"].removeprefix(scope.base_url + "/")
    if "ETag" in result.headers:
        response["etag"] = result.headers["ETag"]
    if result.stored is not None:
        response["lastModified"] = result.stored.last_updated
    entry: dict[str, Any] = {}
    body = None if minimal and result.stored is not None else result.body_resource()
    if result.stored is not None:
        entry["fullUrl"] = f"{scope.base_url}/{result.stored.type}/{result.stored.id}"
    if body is not None:
        if body.get("resourceType") == "OperationOutcome" and result.stored is None:
            response["outcome"] = body
        else:
            entry["resource"] = body
    entry["response"] = response
    return entry
