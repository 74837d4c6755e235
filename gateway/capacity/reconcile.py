"""Turn one bed-status report (total, free) into the transaction that makes the store agree with it: the
first `free` Slots free, the next ones up to `total` busy, and Slots beyond `total` (from an earlier, larger
report) closed (busy-unavailable). Last writer by source timestamp wins: a report that is not newer than the
Schedule's source timestamp changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.capacity import model
from gateway.capacity.rows import CapacityRow
from gateway.capacity.state import UnitState
from gateway.capacity.terms import CapacityTerms

APPLY, DUPLICATE, OUT_OF_ORDER = "applied", "duplicate", "out-of-order"


@dataclass(frozen=True)
class Decision:
    verdict: str  # applied | duplicate | out-of-order
    bundle: dict[str, Any] | None = None
    previous: str | None = None  # the stored source timestamp


def slot_statuses(total: int, free: int, existing: frozenset[int]) -> dict[int, str]:
    statuses = {index: model.FREE if index < free else model.BUSY for index in range(total)}
    for index in existing:
        if index >= total:
            statuses[index] = model.UNAVAILABLE
    return statuses


def decide(row: CapacityRow, state: UnitState, terms: CapacityTerms,
           horizon: timedelta = model.DEFAULT_HORIZON) -> Decision:
    stored = state.schedule_resource
    previous = model.source_timestamp(stored) if stored else None
    if previous is not None:
        new, old = model.parse_instant(row.timestamp), model.parse_instant(previous)
        if new == old:
            return Decision(DUPLICATE, previous=previous)
        if new < old:
            return Decision(OUT_OF_ORDER, previous=previous)
    key, category = row.key, terms.categories[row.key.category]
    region_code = row.region or (model.region_code(state.location) if state.location else None)
    region = terms.regions.get(region_code) if region_code else None
    entries: list[dict[str, Any]] = []
    if not state.has_organization:
        entries.append(_put(model.organization(key, row.organization_name, region=region)))
    if state.location is None:
        entries.append(_put(model.location(key, row.location_name, region)))
    if not state.has_service:
        entries.append(_put(model.healthcare_service(key, category, region)))
    schedule_entry = _put(model.schedule(key, category, region, row.timestamp, horizon))
    if state.schedule is not None:  # optimistic lock: a concurrent report for this unit makes this one retry
        schedule_entry["request"]["ifMatch"] = f'W/"{state.schedule.version}"'
    entries.append(schedule_entry)
    for index, status in sorted(slot_statuses(row.total, row.free, state.slot_indices).items()):
        entries.append(_put(model.slot(key, index, category, status, row.timestamp, horizon)))
    return Decision(APPLY, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, previous)


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}
