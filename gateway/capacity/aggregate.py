"""`GET [base]/MeasureReport/$aggregate?region=..&category=..[&national=true][&trend=24[&step=60]]`: capacity
per ROAZ region and category as SANER-style MeasureReports, counted from the capacity Slots when asked (never
stale copies). With `trend=H` each group also carries a stratifier `trend` with one stratum per moment over
the last H hours (every `step` minutes, default 60): free and total at that moment (see trend.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.capacity import params as p
from gateway.capacity.counts import SlotFilter, Tally, count_by_region
from gateway.capacity.model import instant
from gateway.capacity.reports import from_index_moment, group, measure_report
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.trend import MAX_HOURS, Point, trend_by_region
from gateway.capacity.urls import OP_AGGREGATE, POPULATION_SYSTEM
from gateway.fhir.context import RequestScope
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation


def aggregate_reports(scope: RequestScope, terms: CapacityTerms, params: list[tuple[str, str]], now: datetime
                      ) -> list[dict[str, Any]]:
    regions, categories = p.values(params, "region"), p.values(params, "category")
    p.known(regions, terms.regions, "ROAZ region(s)", "region")
    try:
        leaves = terms.expand_categories(categories) if categories else list(terms.categories)
    except KeyError as error:
        p.known([str(error.args[0])], set(), "capacity category", "category")
        raise
    regions = regions or list(terms.regions)
    hours = p.count(params, "trend", 0, MAX_HOURS)
    step = max(p.count(params, "step", 60, 24 * 60), 5)
    trends: dict[tuple[str, str], list[Point]] = {}
    with scope.reading() as connection:
        tallies = count_by_region(connection, terms, SlotFilter(leaves, regions), now)
        if hours:
            _, trends = trend_by_region(connection, terms, SlotFilter(leaves, regions), now, hours, step)
    if p.boolean(params, "national"):
        national: dict[str, Tally] = {category: Tally() for category in leaves}
        for (_, category), tally in tallies.items():
            national[category].merge(tally)
        summed: dict[str, list[Point]] = {}
        for (_, category), points in trends.items():
            before = summed.get(category)
            summed[category] = points if before is None else [
                Point(a.at, a.free + b.free, a.total + b.total) for a, b in zip(before, points, strict=True)]
        return [_with_trend(_report(terms, now, None, national, leaves), summed, hours)]
    return [
        _with_trend(_report(terms, now, region, {c: t for (r, c), t in tallies.items() if r == region}, leaves),
                    {c: points for (r, c), points in trends.items() if r == region}, hours)
        for region in regions
    ]


def _with_trend(report: dict[str, Any], trends: dict[str, list[Point]], hours: int) -> dict[str, Any]:
    """Adds the `trend` stratifier to every group that has one (a category nobody reports has none)."""
    if not hours:
        return report
    report["period"]["start"] = instant_of(report["period"]["end"], hours)
    for entry in report.get("group", []):
        points = trends.get(entry["code"]["coding"][0]["code"])
        if not points:
            continue
        entry["stratifier"] = [{"code": [{"text": "trend"}], "stratum": [
            {"value": {"text": instant(point.at)},
             "population": [{"code": {"coding": [{"system": POPULATION_SYSTEM, "code": "free"}]}, "count": point.free},
                            {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": "total"}]},
                             "count": point.total}]}
            for point in points]}]
    return report


def instant_of(end: str, hours: int) -> str:
    return instant(datetime.fromisoformat(end.replace("Z", "+00:00")) - timedelta(hours=hours))


def _report(terms: CapacityTerms, now: datetime, region: str | None, tallies: dict[str, Tally],
            categories: list[str]) -> dict[str, Any]:
    groups = [group(terms, category, tallies.get(category, Tally())) for category in categories]
    oldest = min((t.oldest_source for t in tallies.values() if t.oldest_source), default=None)
    stale = any(t.stale for t in tallies.values())
    return measure_report(now, groups, terms.regions[region] if region else None,
                          oldest_source=from_index_moment(oldest), stale=stale)


def aggregate_bundle(reports: list[dict[str, Any]]) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "collection"}
    if reports:
        bundle["timestamp"] = reports[0]["date"]
        bundle["entry"] = [{"resource": report} for report in reports]
    return bundle


def aggregate_operation(terms: CapacityTerms, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Operation:
    def handler(scope: RequestScope, it: Interaction) -> Result:
        return Result(200, resource=aggregate_bundle(aggregate_reports(scope, terms, it.params, clock())))

    return Operation("aggregate", handler, OP_AGGREGATE, frozenset({"type"}), frozenset({"MeasureReport"}),
                     "Capacity per ROAZ region and category (SANER-style MeasureReports)")
