"""SANER-style MeasureReport input: a capacity report as FHIR MeasureReport(s) becomes feed rows.

    reporter.identifier  URA of the organisation          (system http://fhir.nl/fhir/NamingSystem/ura)
    subject.identifier   the location's code              (any system; or subject.display)
    date                 the source timestamp
    group.code           a capacity category (one group per category)
    group.population     total and free (or total and occupied) from the capacity-population CodeSystem
"""

from __future__ import annotations

from typing import Any

from gateway.capacity.model import region_code
from gateway.capacity.rows import FeedFormatError
from gateway.capacity.urls import CATEGORY_SYSTEM, POPULATION_SYSTEM, URA_SYSTEM


def is_measure_report_feed(raw: dict[str, Any] | list[Any]) -> bool:
    return isinstance(raw, dict) and raw.get("resourceType") in {"MeasureReport", "Bundle"}


def measure_report_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body.get("resourceType") == "Bundle":
        reports = [e.get("resource") for e in body.get("entry", []) if isinstance(e, dict)]
    else:
        reports = [body]
    rows: list[dict[str, Any]] = []
    for report in reports:
        if not isinstance(report, dict) or report.get("resourceType") != "MeasureReport":
            raise FeedFormatError("a MeasureReport feed is a MeasureReport or a Bundle of MeasureReports")
        rows.extend(_rows_of(report))
    return rows


def _rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    reporter = report.get("reporter") or {}
    reporter_id = reporter.get("identifier") or {}
    ura = reporter_id.get("value") if reporter_id.get("system") == URA_SYSTEM else None
    subject = report.get("subject") or {}
    location = (subject.get("identifier") or {}).get("value") or subject.get("display")
    rows = []
    for group in report.get("group", []) or [{}]:
        counts = {_code(p.get("code"), POPULATION_SYSTEM): p.get("count") for p in group.get("population", [])}
        total, free = counts.get("total"), counts.get("free")
        if free is None and isinstance(total, int) and isinstance(counts.get("occupied"), int):
            free = total - counts["occupied"]
        rows.append({"ura": ura, "location": location, "category": _code(group.get("code"), CATEGORY_SYSTEM),
                     "total": total, "free": free, "timestamp": report.get("date"),
                     "region": region_code(report)})
    return rows


def _code(concept: Any, system: str) -> str | None:
    if not isinstance(concept, dict):
        return None
    return next((c.get("code") for c in concept.get("coding", []) if c.get("system") == system), None)
