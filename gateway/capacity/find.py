"""`GET [base]/Slot/$find-capacity?category=..&region=..&at=..[&near=lat|lon|km][&postcode=..]`: free
capacity per provider (one MeasureReport per Schedule), nearest first when an origin is given, with the
Location, HealthcareService and Organization included. Stale capacity is listed and marked, never hidden:
the triagist decides whether to call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
        with_free = count_by_schedule(connection, terms, wanted, now) if wanted.free_only else counted
        candidates = _load(scope, connection, {sid: counted[sid] for sid in with_free if sid in counted})
    for candidate in candidates:
        position = position_of(candidate.location)
        if origin is not None and position is not None:
            candidate.distance = distance_km(origin, position)
    if origin is not None and limit is not None:
        candidates = [c for c in candidates if c.distance is not None and c.distance <= limit]
    candidates.sort(key=lambda c: (c.distance is None, c.distance or 0.0, -c.tally.free, c.schedule["id"]))
    candidates = candidates[: p.count(params, "_count", DEFAULT_COUNT, MAX_COUNT)]
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


def _load(scope: RequestScope, connection: Any, counted: dict[str, tuple[str, Tally]]) -> list[_Candidate]:
    store = scope.services.store
    candidates = []
    for schedule_id, (region, tally) in counted.items():
        stored = store.get(connection, "Schedule", schedule_id)
        if stored is None or stored.deleted:
            continue
        candidate = _Candidate(stored.resource(), region, tally)
        for actor in candidate.schedule.get("actor", []):
            kind, _, actor_id = str(actor.get("reference", "")).partition("/")
            if kind in {"Location", "HealthcareService"}:
                found = store.get(connection, kind, actor_id)
                if found is not None and not found.deleted:
                    setattr(candidate, "location" if kind == "Location" else "service", found.resource())
        owner = (candidate.service or {}).get("providedBy") or (candidate.location or {}).get("managingOrganization")
        if owner and str(owner.get("reference", "")).startswith("Organization/"):
            found = store.get(connection, "Organization", owner["reference"].split("/", 1)[1])
            candidate.organization = found.resource() if found is not None and not found.deleted else None
        candidates.append(candidate)
    return candidates


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
