"""Capacity counts as SANER-style MeasureReports (profile capacity-MeasureReport): one group per category
with the populations total, occupied, free, unavailable and stale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.capacity.counts import Tally
from gateway.capacity.model import instant, region_extension, source_timestamp_extension
from gateway.capacity.terms import CapacityTerms, Region
from gateway.capacity.urls import (
    DISTANCE_EXTENSION,
    MEASURE,
    POPULATION_SYSTEM,
    PROFILE_MEASURE_REPORT,
    STALE_EXTENSION,
)

POPULATIONS = ("total", "occupied", "free", "unavailable", "stale")


def group(terms: CapacityTerms, category: str, tally: Tally) -> dict[str, Any]:
    counts = {"total": tally.total, "occupied": tally.occupied, "free": tally.free,
              "unavailable": tally.unavailable, "stale": tally.stale}
    return {
        "code": {"coding": [terms.categories[category].coding()]},
        "population": [{"code": {"coding": [{"system": POPULATION_SYSTEM, "code": name}]}, "count": counts[name]}
                       for name in POPULATIONS],
    }


def from_index_moment(value: str | None) -> str | None:
    return f"{value[:19]}Z" if value else None


def measure_report(now: datetime, groups: list[dict[str, Any]], region: Region | None = None,
                   subject: str | None = None, reporter: str | None = None, oldest_source: str | None = None,
                   stale: bool | None = None, distance_km: float | None = None) -> dict[str, Any]:
    extensions = []
    if region is not None:
        extensions.append(region_extension(region))
    if oldest_source:
        extensions.append(source_timestamp_extension(oldest_source))
    if stale is not None:
        extensions.append({"url": STALE_EXTENSION, "valueBoolean": stale})
    if distance_km is not None:
        extensions.append({"url": DISTANCE_EXTENSION, "valueDecimal": round(distance_km, 2)})
    report: dict[str, Any] = {"resourceType": "MeasureReport", "meta": {"profile": [PROFILE_MEASURE_REPORT]}}
    if extensions:
        report["extension"] = extensions
    report.update({"status": "complete", "type": "summary", "measure": MEASURE})
    if subject:
        report["subject"] = {"reference": subject}
    report["date"] = instant(now)
    if reporter:
        report["reporter"] = {"reference": reporter}
    report["period"] = {"start": instant(now), "end": instant(now)}
    if groups:
        report["group"] = groups
    return report
