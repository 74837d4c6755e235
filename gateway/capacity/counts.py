"""Counting capacity Slots straight from the search index (one GROUP BY, not one search per cell): per
region/category or per Schedule, by status, split into fresh and stale by each category's maximum age."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, and_, case, func, select

from gateway.capacity.model import BUSY, FREE, TENTATIVE, UNAVAILABLE
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.urls import CATEGORY_SYSTEM, REGION_SYSTEM
from gateway.store.schema import idx_date, idx_reference, idx_token, resource


@dataclass
class Tally:
    free: int = 0
    occupied: int = 0
    unavailable: int = 0
    stale: int = 0
    oldest_source: str | None = None  # index form (UTC, no zone) of the oldest source timestamp
    categories: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.free + self.occupied

    def add(self, status: str, stale: bool, count: int) -> None:
        if status == FREE:
            self.free += count
        elif status in {BUSY, TENTATIVE}:
            self.occupied += count
        elif status == UNAVAILABLE:
            self.unavailable += count
        if stale:
            self.stale += count

    def merge(self, other: Tally) -> None:
        self.free += other.free
        self.occupied += other.occupied
        self.unavailable += other.unavailable
        self.stale += other.stale
        if other.oldest_source and (self.oldest_source is None or other.oldest_source < self.oldest_source):
            self.oldest_source = other.oldest_source


def index_moment(moment: datetime) -> str:
    """A moment in the form idx_date stores (UTC, microseconds, no zone): comparable as a string."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


@dataclass(frozen=True)
class SlotFilter:
    categories: list[str]
    regions: list[str] | None = None  # None: every region (and Slots whose Schedule has none are skipped)
    at: datetime | None = None  # only Slots whose [start, end) covers this moment
    free_only: bool = False


def _schedules(wanted: SlotFilter):  # type: ignore[no-untyped-def]
    """(id, region) of the Schedules of the wanted categories and regions (a small set: one per provider and
    category), as a subquery the Slot count starts from: the Slots are found through their references to these
    Schedules, not by scanning every Slot."""
    schedule, region, category = resource.alias("schedule"), idx_token.alias("reg"), idx_token.alias("scat")
    query = (
        # one row per Schedule (several region or category codes must not count its Slots twice)
        select(schedule.c.id.label("id"), func.max(region.c.code).label("region"))
        .select_from(schedule
                     .join(region, and_(region.c.res_key == schedule.c.res_key, region.c.param == "region",
                                        region.c.system == REGION_SYSTEM))
                     .join(category, and_(category.c.res_key == schedule.c.res_key,
                                          category.c.param == "service-type", category.c.system == CATEGORY_SYSTEM)))
        .where(schedule.c.type == "Schedule", schedule.c.deleted.is_(False),
               # `|| ''`: drive by the region rows (a few per unit), not by service-type (every Slot has one)
               (category.c.code + "").in_(wanted.categories), category.c.param.concat("") == "service-type")
    )
    if wanted.regions is not None:
        query = query.where(region.c.code.in_(wanted.regions))
    return query.group_by(schedule.c.id).subquery("wanted_schedule")


def _rows(connection: Connection, terms: CapacityTerms, wanted: SlotFilter, now: datetime):  # type: ignore[no-untyped-def]
    """(schedule id, region, category, status, stale, count, oldest source timestamp) over the Slots of every
    wanted Schedule: one statement (one round trip, no list of Schedule ids to send and plan).
    `|| ''` keeps SQLite from driving the join by the category/start indexes (every Slot)."""
    schedules = _schedules(wanted)
    slot, status, category = resource.alias("slot"), idx_token.alias("st"), idx_token.alias("cat")
    reference, stamp = idx_reference.alias("ref"), idx_date.alias("ts")
    stale = case(
        *[(and_(category.c.code == code, stamp.c.high < index_moment(now - timedelta(minutes=c.max_age_minutes))), 1)
          for code, c in terms.categories.items() if code in wanted.categories],
        (stamp.c.high.is_(None), 1), else_=0,
    ).label("stale")
    joins = (
        schedules.join(reference, reference.c.target_id == schedules.c.id)
        .join(slot, slot.c.res_key == reference.c.res_key)
        .join(status, and_(status.c.res_key == slot.c.res_key, status.c.param == "status"))
        .join(category, and_(category.c.res_key == slot.c.res_key, category.c.param == "service-type",
                             category.c.system == CATEGORY_SYSTEM))
        .outerjoin(stamp, and_(stamp.c.res_key == slot.c.res_key, stamp.c.param == "source-timestamp"))
    )
    conditions = [reference.c.param == "schedule", reference.c.target_type == "Schedule",
                  slot.c.type == "Slot", slot.c.deleted.is_(False), (category.c.code + "").in_(wanted.categories)]
    if wanted.free_only:
        conditions.append(status.c.code == FREE)
    if wanted.at is not None:
        start, end = idx_date.alias("start"), idx_date.alias("end")
        moment = index_moment(wanted.at)
        joins = joins.join(start, and_(start.c.res_key == slot.c.res_key, start.c.param == "start")).join(
            end, and_(end.c.res_key == slot.c.res_key, end.c.param == "end"))
        conditions += [(start.c.low + "") <= moment, (end.c.high + "") > moment]
    query = (select(schedules.c.id, schedules.c.region, category.c.code, status.c.code, stale, func.count(),
                    func.min(stamp.c.high))
             .select_from(joins).where(and_(*conditions))
             .group_by(schedules.c.id, schedules.c.region, category.c.code, status.c.code, stale))
    yield from connection.execute(query)


def count_by_region(connection: Connection, terms: CapacityTerms, wanted: SlotFilter, now: datetime
                    ) -> dict[tuple[str, str], Tally]:
    """(region, category) -> Tally."""
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for _, region, category, status, stale, count, oldest in _rows(connection, terms, wanted, now):
        tally = tallies[(region, category)]
        tally.add(status, bool(stale), count)
        tally.merge(Tally(oldest_source=oldest))
    return dict(tallies)


def count_by_schedule(connection: Connection, terms: CapacityTerms, wanted: SlotFilter, now: datetime
                      ) -> dict[str, tuple[str, Tally]]:
    """schedule id -> (region, Tally over its Slots)."""
    result: dict[str, tuple[str, Tally]] = {}
    for schedule, region, category, status, stale, count, oldest in _rows(connection, terms, wanted, now):
        _, tally = result.setdefault(schedule, (region, Tally()))
        tally.add(status, bool(stale), count)
        tally.categories.add(category)
        tally.merge(Tally(oldest_source=oldest))
    return result
