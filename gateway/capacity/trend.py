"""The capacity trend: free / total per region and category at regular moments over the last hours,
reconstructed from what the store already keeps — the version history of the capacity Slots.

Every bed-status report (and every FHIR update of a capacity Slot) writes a Slot version whose `start` is the
source's confirmation time. Per Schedule (one unit of capacity) the Slot versions with the same `start` are
one report: free = Slots `free`, total = `free` + `busy` + `busy-tentative` (closed Slots do not count, as
in the aggregates). A unit's value at a moment is its latest report at or before that moment, by source
time — so reports that arrive late or were back-filled land where they belong.

Which versions are read: those *written* since the window start minus `LOOKBACK` (so the report in force at
the window start is usually among them), plus the current counts of every wanted Schedule (a unit that did
not report in the window still counts, with its current value from its own source time on). Cost grows with
the number of Slot versions written in the window; at a very large scale a compact count history (one row
per report) would be the next step."""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from conformance import fhirjson
from gateway.capacity.counts import SlotFilter, count_by_schedule
from gateway.capacity.model import BUSY, FREE, TENTATIVE, parse_instant
from gateway.capacity.terms import CapacityTerms
from gateway.store.schema import resource_version

LOOKBACK = timedelta(hours=12)
MAX_HOURS = 48


@dataclass(frozen=True)
class Point:
    at: datetime
    free: int
    total: int


def moments(now: datetime, hours: int, step_minutes: int) -> list[datetime]:
    """The trend's moments, oldest first, ending at `now`."""
    step = timedelta(minutes=step_minutes)
    count = int(timedelta(hours=hours) / step)
    return [now - step * (count - n) for n in range(count + 1)]


def _reports(connection: Connection, schedules: set[str], written_since: datetime) -> dict[str, list[Point]]:
    """schedule id -> one Point per report (source time), from the Slot versions written since then."""
    query = (select(resource_version.c.id, resource_version.c.version, resource_version.c.body)
             .where(resource_version.c.type == "Slot", resource_version.c.deleted.is_(False),
                    resource_version.c.last_updated >= written_since.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")))
    latest: dict[tuple[str, str, str], tuple[int, str]] = {}  # (schedule, start, slot) -> (version, status)
    for slot_id, version, body in connection.execute(query):
        slot = fhirjson.loads_trusted(body)
        reference = (slot.get("schedule") or {}).get("reference", "")
        schedule_id = reference.rsplit("/", 1)[-1]
        if schedule_id not in schedules or not isinstance(slot.get("start"), str):
            continue
        key = (schedule_id, slot["start"], slot_id)
        if key not in latest or latest[key][0] < version:
            latest[key] = (version, str(slot.get("status")))
    counted: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (schedule_id, start, _), (_, status) in latest.items():
        tally = counted[(schedule_id, start)]
        if status == FREE:
            tally[0] += 1
        if status in {FREE, BUSY, TENTATIVE}:
            tally[1] += 1
    points: dict[str, list[Point]] = defaultdict(list)
    for (schedule_id, start), (free, total) in counted.items():
        try:
            points[schedule_id].append(Point(parse_instant(start).astimezone(UTC), free, total))
        except ValueError:
            continue
    return points


def trend_by_region(connection: Connection, terms: CapacityTerms, wanted: SlotFilter, now: datetime,
                    hours: int, step_minutes: int) -> tuple[list[datetime], dict[tuple[str, str], list[Point]]]:
    """(moments, (region, category) -> one Point per moment). A unit adds nothing before its first known
    report."""
    at = moments(now, hours, step_minutes)
    current = count_by_schedule(connection, terms, wanted, now)  # schedule -> (region, tally with categories)
    history = _reports(connection, set(current), at[0] - LOOKBACK)
    totals: dict[tuple[str, str], list[list[int]]] = {}
    for schedule_id, (region, tally) in current.items():
        if len(tally.categories) != 1:
            continue  # a capacity Schedule has one category; anything else is not a unit
        category = next(iter(tally.categories))
        points = sorted(history.get(schedule_id, []), key=lambda p: p.at)
        if tally.oldest_source:  # the unit as it is now, from its (oldest) source time on
            since = datetime.strptime(tally.oldest_source, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
            if not points or points[-1].at < since:
                points.append(Point(since, tally.free, tally.total))
        if not points:
            continue
        starts = [p.at for p in points]
        cell = totals.setdefault((region, category), [[0, 0] for _ in at])
        for n, moment in enumerate(at):
            index = bisect.bisect_right(starts, moment) - 1
            if index >= 0:
                cell[n][0] += points[index].free
                cell[n][1] += points[index].total
    return at, {key: [Point(moment, free, total) for moment, (free, total) in zip(at, values, strict=True)]
                for key, values in totals.items()}

