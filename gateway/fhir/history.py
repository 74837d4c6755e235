"""History interactions (instance, type, system) as `history` Bundles, newest first, with stable paging."""

from __future__ import annotations

from typing import Any

from conformance import fhirjson
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.headers import etag
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.paging import decode_cursor, encode_cursor
from gateway.fhir.search_params import parse_count, parse_instant_param
from gateway.fhir.write_checks import check_id

_ALLOWED = {"_count", "_since", "_page", "_format", "_pretty", "_at"}


def history(scope: RequestScope, it: Interaction) -> Result:
    params = dict(it.params)
    unknown = [name for name, _ in it.params if name not in _ALLOWED]
    if unknown and it.prefer("handling") != "lenient":
        raise FhirError(400, "not-supported", f"history does not support the parameter '{unknown[0]}'")
    if it.id:
        check_id(it.id)
    settings = scope.services.settings
    count = parse_count(params.get("_count"), settings.default_count, settings.max_count)
    since = parse_instant_param("_since", params["_since"]) if "_since" in params else None
    cursor = decode_cursor(params["_page"]) if "_page" in params else {}
    offset = int(cursor.get("offset", 0))
    with scope.reading() as connection:
        if it.id and it.resource_type:
            if scope.services.store.get(connection, it.resource_type, it.id) is None:
                raise FhirError(404, "not-found", f"{it.resource_type}/{it.id} is not known")
        entries, total, high_water = scope.services.store.history(
            connection, it.resource_type, it.id, since, offset, count, cursor.get("until")
        )
    base = scope.base_url
    path = "/".join(p for p in (it.resource_type, it.id) if p)
    path = f"{base}/{path}/_history" if path else f"{base}/_history"
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": total, "link": []}
    state = {"until": high_water, "count": count, "since": since}

    def link(relation: str, at: int) -> dict[str, str]:
        page = encode_cursor({**state, "offset": at})
        return {"relation": relation, "url": f"{path}?_page={page}&_count={count}"}

    bundle["link"].append(link("self", offset))
    if offset + count < total:
        bundle["link"].append(link("next", offset + count))
    if offset > 0:
        bundle["link"].append(link("previous", max(0, offset - count)))
    if entries:  # FHIR has no empty arrays (an empty history in XML gave a 500; found by schemathesis)
        bundle["entry"] = [_entry(base, entry) for entry in entries]
    return Result(200, resource=bundle)


def _entry(base: str, entry: Any) -> dict[str, Any]:
    url = f"{entry.type}/{entry.id}"
    item: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
    if not entry.deleted and entry.body is not None:
        item["resource"] = fhirjson.loads_trusted(entry.body)
    request_url = url if entry.method != "POST" else entry.type
    item["request"] = {"method": entry.method, "url": request_url}
    status = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}[entry.method]
    item["response"] = {"status": status, "etag": etag(entry.version), "lastModified": entry.last_updated}
    return item
