"""`GET [base]/Slot/$find-capacity?category=..&region=..&at=..[&near=lat|lon|km][&postcode=..]`: free
capacity per provider (one MeasureReport per Schedule), nearest first when an origin is given, with the
Location, HealthcareService and Organization included. Stale capacity is listed and marked, never hidden:
the triagist decides whether to call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from conformance import fhirjson
from gateway.capacity import params as p
from gateway.capacity.counts import SlotFilter, Tally, count_by_schedule
from gateway.capacity.geo import distance_km, parse_near, position_of, postcode_origin
from gateway.capacity.reports import from_index_moment, group, measure_report
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.urls import OP_FIND_CAPACITY
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation
from gateway.store.schema import resource as resource_table

DEFAULT_COUNT, MAX_COUNT = 50, 500


@dataclass
class _Candidate:
    schedule: dict[str, Any]
    region: str
    tally: Tally
    location: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    organization: dict[str, Any] | None = None
    distance: float | None = None


def find_capacity(scope: RequestScope, terms: CapacityTerms, params: list[tuple[str, str]], now: datetime
                  ) -> dict[str, Any]:
    categories = p.values(params, "category")
    if not categories:
        raise FhirError(400, "required", "$find-capacity needs at least one 'category'", ["category"])
    try:
        leaves = terms.expand_categories(categories)
    except KeyError as error:
        raise FhirError(400, "code-invalid", f"unknown capacity category: {error.args[0]}", ["category"]) from None
    regions = p.values(params, "region")
    p.known(regions, terms.regions, "ROAZ region(s)", "region")
    regions_wanted = terms.expand_regions(regions, p.boolean(params, "neighbours")) if regions else None
    at = p.moment(params, "at", now)
    origin, limit = _origin(scope, params)
    wanted = SlotFilter(leaves, regions_wanted, at, free_only=not p.boolean(params, "include-empty"))
    with scope.reading() as connection:
        counted = count_by_schedule(connection, terms, SlotFilter(leaves, regions_wanted, at), now)
        # with free Slots: those whose tally over the same Slots has free > 0 (no second count of the same rows)
        with_free = [sid for sid, (_, tally) in counted.items() if tally.free > 0] if wanted.free_only else counted
        candidates = _load(connection, {sid: counted[sid] for sid in with_free})
        for candidate in candidates:
            position = position_of(candidate.location)
            if origin is not None and position is not None:
                candidate.distance = distance_km(origin, position)
        if origin is not None and limit is not None:
            candidates = [c for c in candidates if c.distance is not None and c.distance <= limit]
        candidates.sort(key=lambda c: (c.distance is None, c.distance or 0.0, -c.tally.free, c.schedule["id"]))
        candidates = candidates[: p.count(params, "_count", DEFAULT_COUNT, MAX_COUNT)]
        _complete(connection, candidates)  # services and organisations: only for the listed candidates
    return _bundle(scope, terms, candidates, now)


def _origin(scope: RequestScope, params: list[tuple[str, str]]) -> tuple[tuple[float, float] | None, float | None]:
    near, postcode = p.single(params, "near"), p.single(params, "postcode")
    if near and postcode:
        raise FhirError(400, "invalid", "give 'near' or 'postcode', not both", ["near"])
    if near:
        return parse_near(near)
    if postcode:
        return postcode_origin(scope, postcode), None
    return None, None


def _load(connection: Any, counted: dict[str, tuple[str, Tally]]) -> list[_Candidate]:
    """The counted Schedules with their Location (for the distance): one query per resource type, not a point
    read per resource (a region has hundreds of Schedules)."""
    schedules = _current(connection, "Schedule", list(counted))
    candidates = []
    for schedule_id, (region, tally) in counted.items():
        schedule = schedules.get(schedule_id)
        if schedule is not None:
            candidates.append(_Candidate(schedule, region, tally))
    locations = _current(connection, "Location", [i for c in candidates for k, i in _actors(c) if k == "Location"])
    for candidate in candidates:
        for kind, actor_id in _actors(candidate):
            if kind == "Location" and actor_id in locations:
                candidate.location = locations[actor_id]
    return candidates


def _complete(connection: Any, candidates: list[_Candidate]) -> None:
    """Add each candidate's HealthcareService (actor) and Organization (the service's provider, else the
    location's manager)."""
    services = _current(connection, "HealthcareService",
                        [i for c in candidates for k, i in _actors(c) if k == "HealthcareService"])
    for candidate in candidates:
        for kind, actor_id in _actors(candidate):
            if kind == "HealthcareService" and actor_id in services:
                candidate.service = services[actor_id]
    owners = {id(c): _owner(c) for c in candidates}
    organizations = _current(connection, "Organization", [o for o in owners.values() if o is not None])
    for candidate in candidates:
        owner = owners[id(candidate)]
        if owner is not None:
            candidate.organization = organizations.get(owner)


def _actors(candidate: _Candidate) -> list[tuple[str, str]]:
    """(type, id) of the Schedule's Location and HealthcareService actors, in order (the last of a type wins)."""
    actors = []
    for actor in candidate.schedule.get("actor", []):
        kind, _, actor_id = str(actor.get("reference", "")).partition("/")
        if kind in {"Location", "HealthcareService"}:
            actors.append((kind, actor_id))
    return actors


def _owner(candidate: _Candidate) -> str | None:
    """The Organization id of the service's provider, else of the location's manager (None when neither)."""
    owner = (candidate.service or {}).get("providedBy") or (candidate.location or {}).get("managingOrganization")
    if owner and str(owner.get("reference", "")).startswith("Organization/"):
        return owner["reference"].split("/", 1)[1]
    return None


_CHUNK = 500


def _current(connection: Any, resource_type: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """id -> resource for the current, non-deleted `resource_type` resources among `ids`."""
    wanted = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = select(resource_table.c.id, resource_table.c.body).where(
            resource_table.c.type == resource_type, resource_table.c.id.in_(wanted[start:start + _CHUNK]),
            resource_table.c.deleted.is_(False))
        found.update((row.id, fhirjson.loads_trusted(row.body)) for row in connection.execute(query))
    return found


def _bundle(scope: RequestScope, terms: CapacityTerms, candidates: list[_Candidate], now: datetime
            ) -> dict[str, Any]:
    base = scope.base_url
    entries: list[dict[str, Any]] = []
    included: dict[str, dict[str, Any]] = {}
    for c in candidates:
        location_ref = f"Location/{c.location['id']}" if c.location else None
        organization_ref = f"Organization/{c.organization['id']}" if c.organization else None
        groups = [group(terms, category, c.tally) for category in sorted(c.tally.categories)]
        report = measure_report(now, groups, terms.regions.get(c.region), location_ref, organization_ref,
                                from_index_moment(c.tally.oldest_source), c.tally.stale > 0, c.distance)
        report["id"] = f"find-{c.schedule['id']}"
        entries.append({"resource": report, "search": {"mode": "match"}})
        for resource in (c.location, c.service, c.organization):
            if resource is not None:
                included.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
    entries += [{"fullUrl": f"{base}/{ref}", "resource": resource, "search": {"mode": "include"}}
                for ref, resource in included.items()]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(candidates)}
    if entries:
        bundle["entry"] = entries
    return bundle


def find_capacity_operation(terms: CapacityTerms, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
                            ) -> Operation:
    def handler(scope: RequestScope, it: Interaction) -> Result:
        return Result(200, resource=find_capacity(scope, terms, it.params, clock()))

    return Operation("find-capacity", handler, OP_FIND_CAPACITY, frozenset({"type"}), frozenset({"Slot"}),
                     "Free capacity per provider, nearest first (category, region, at, near/postcode)")
