"""Instance-level interactions: read, vread, create (incl. conditional), update (incl. conditional), delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection

from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.fhir.headers import etag, parse_if_match, version_headers
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.search_handler import find_matches
from gateway.fhir.write_checks import check_id
from gateway.store.repository import StoredResource, VersionConflict


def read(scope: RequestScope, it: Interaction) -> Result:
    assert it.resource_type and it.id
    check_id(it.id)
    with scope.reading(snapshot=False) as connection:
        stored = scope.services.store.get(connection, it.resource_type, it.id)
    if stored is None:
        raise FhirError(404, "not-found", f"{it.resource_type}/{it.id} is not known")
    if stored.deleted:
        raise FhirError(
            410,
            "deleted",
            f"{it.resource_type}/{it.id} was deleted (version {stored.version})",
            headers={"ETag": etag(stored.version)},
        )
    headers = version_headers(scope.base_url, stored.type, stored.id, stored.version, stored.last_updated)
    if it.header("if-none-match") in {etag(stored.version), f'"{stored.version}"'}:
        return Result(304, headers=headers)
    return Result(200, stored=stored, headers=headers)


def vread(scope: RequestScope, it: Interaction) -> Result:
    assert it.resource_type and it.id and it.version
    check_id(it.id)
    if not it.version.isdigit():
        raise FhirError(404, "not-found", f"version '{it.version}' is not known")
    with scope.reading() as connection:
        entry = scope.services.store.get_version(connection, it.resource_type, it.id, int(it.version))
    if entry is None:
        raise FhirError(404, "not-found", f"{it.resource_type}/{it.id}/_history/{it.version} is not known")
    if entry.deleted:
        raise FhirError(410, "deleted", f"{it.resource_type}/{it.id} version {it.version} is a deletion")
    stored = StoredResource(0, entry.type, entry.id, entry.version, entry.last_updated, False, entry.body)
    return Result(
        200,
        stored=stored,
        headers=version_headers(scope.base_url, entry.type, entry.id, entry.version, entry.last_updated),
    )


def create(scope: RequestScope, it: Interaction) -> Result:
    assert it.resource_type
    body = _require_body(it)
    warnings = scope.services.write_checks.check(body, it.resource_type, None, require_id=False)
    with scope.writing() as connection:
        condition = it.header("if-none-exist")
        if condition:
            existing = _conditional_matches(scope, connection, it.resource_type, condition)
            if len(existing) > 1:
                raise FhirError(
                    412, "multiple-matches", f"If-None-Exist '{condition}' matches {len(existing)} resources"
                )
            if existing:
                stored = existing[0]
                headers = version_headers(scope.base_url, stored.type, stored.id, stored.version, stored.last_updated)
                return _write_result(it, 200, stored, headers, warnings)
        body.pop("id", None)  # the server assigns ids on create (a transaction may have assigned one up front)
        stored, _ = scope.services.store.save(connection, body, it.id)
    headers = version_headers(
        scope.base_url, stored.type, stored.id, stored.version, stored.last_updated, location=True
    )
    return _write_result(it, 201, stored, headers, warnings)


def update(scope: RequestScope, it: Interaction) -> Result:
    assert it.resource_type
    body = _require_body(it)
    if_match = parse_if_match(it.header("if-match"))
    with scope.writing() as connection:
        if it.id is None:  # conditional update: PUT [type]?[search]
            target_id = _conditional_update_target(scope, connection, it, body)
        else:
            check_id(it.id)
            target_id = it.id
        warnings = scope.services.write_checks.check(
            body, it.resource_type, target_id, require_id=it.id is not None or "id" in body
        )
        try:
            stored, created = scope.services.store.save(connection, body, target_id, if_match=if_match)
        except VersionConflict as conflict:
            raise FhirError(
                412, "conflict", f"If-Match {if_match} does not match the current version {conflict.current}"
            ) from None
    headers = version_headers(
        scope.base_url, stored.type, stored.id, stored.version, stored.last_updated, location=created
    )
    return _write_result(it, 201 if created else 200, stored, headers, warnings)


def delete(scope: RequestScope, it: Interaction) -> Result:
    assert it.resource_type
    with scope.writing() as connection:
        if it.id is None:  # conditional delete
            matches = find_matches(scope, connection, it.resource_type, it.params)
            if len(matches) > 1:
                raise FhirError(412, "multiple-matches", f"the condition matches {len(matches)} resources")
            ids = [match.id for match in matches]
        else:
            check_id(it.id)
            ids = [it.id]
        deleted = [scope.services.store.delete(connection, it.resource_type, rid) for rid in ids]
    headers = {}
    done = [d for d in deleted if d is not None]
    if done:
        headers["ETag"] = etag(done[0].version)
    message = f"deleted {it.resource_type}/{done[0].id}" if done else "nothing to delete"
    if it.prefer("return") == "operationoutcome":
        return Result(
            200, resource=operation_outcome([Issue("information", "informational", message)]), headers=headers
        )
    return Result(204, headers=headers)


# -- helpers -------------------------------------------------------------------------------------------
def _require_body(it: Interaction) -> dict[str, Any]:
    if it.body is None:
        raise FhirError(400, "required", "this interaction needs a resource in the body")
    return it.body


def _conditional_matches(
    scope: RequestScope, connection: Connection, resource_type: str, query: str
) -> list[StoredResource]:
    query = query.split("?", 1)[1] if "?" in query else query
    params = parse_qsl(query, keep_blank_values=True)
    if not params:
        raise FhirError(400, "invalid", f"the condition '{query}' has no search parameters")
    return find_matches(scope, connection, resource_type, params)


def _conditional_update_target(
    scope: RequestScope, connection: Connection, it: Interaction, body: dict[str, Any]
) -> str | None:
    assert it.resource_type
    if not it.params:
        raise FhirError(400, "invalid", "a conditional update needs search parameters")
    matches = find_matches(scope, connection, it.resource_type, it.params)
    if len(matches) > 1:
        raise FhirError(412, "multiple-matches", f"the condition matches {len(matches)} resources")
    if matches:
        if "id" in body and body["id"] != matches[0].id:
            raise FhirError(
                400, "invalid", f"the body id '{body['id']}' differs from the matched resource {matches[0].id}"
            )
        return matches[0].id
    return body.get("id")  # no match: create, with the client's id when given


def _write_result(
    it: Interaction, status: int, stored: StoredResource, headers: dict[str, str], warnings: list[Issue]
) -> Result:
    preference = it.prefer("return")
    if preference == "minimal":
        return Result(status, headers=headers)
    if preference == "operationoutcome":
        issues = warnings or [
            Issue("information", "informational", f"{stored.type}/{stored.id} version {stored.version} stored")
        ]
        return Result(status, resource=operation_outcome(issues), headers=headers)
    return Result(status, stored=stored, headers=headers)
