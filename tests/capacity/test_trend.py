"""The 24 h trend of `$aggregate?trend=H`: reconstructed from the Slot version history by source time — late
(back-filled) reports land at their own moment, a unit counts from its first report on, closed Slots do not
count, and the national report sums the regions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.capacity import model
from gateway.capacity.trend import moments
from tests.capacity.helpers import at, row

REGION = "euregio"


def _strata(report: dict[str, Any], category: str) -> list[tuple[datetime, int, int]]:
    for group in report.get("group", []):
        if group["code"]["coding"][0]["code"] != category:
            continue
        points = []
        for stratum in group["stratifier"][0]["stratum"]:
            counts = {p["code"]["coding"][0]["code"]: p["count"] for p in stratum["population"]}
            points.append((model.parse_instant(stratum["value"]["text"]), counts["free"], counts["total"]))
        return points
    raise KeyError(category)


def _value_at(points: list[tuple[datetime, int, int]], hours_ago: float) -> tuple[int, int]:
    """The stratum nearest to that moment (strata are hourly)."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    nearest = min(points, key=lambda p: abs((p[0] - moment).total_seconds()))
    return nearest[1], nearest[2]


def test_trend_follows_the_reports_by_source_time(client) -> None:  # type: ignore[no-untyped-def]
    # the 20 h report arrives last (back-filled): it must land 20 h ago, not overwrite "now"
    reports = [("55555551", "IC-E", "zh-ic", 6, 4, at(60 * 10)), ("55555551", "IC-E", "zh-ic", 4, 1, at(60 * 2)),
               ("55555552", "SEH-E", "zh-seh", 3, 3, at(60 * 5))]
    for ura, location, category, total, free, stamp in reports:
        response = client.post("/ingest/capacity", json=[row(ura, location, category, total, free, stamp, REGION)])
        assert response.json()["applied"] == 1, response.text
    late = client.post("/ingest/capacity", json=[row("55555551", "IC-E", "zh-ic", 8, 8, at(60 * 20), REGION)])
    assert late.json()["outOfOrder"] == 1  # older than the stored report: not applied, so not in the history

    response = client.get("/fhir/MeasureReport/$aggregate", params={"region": REGION, "category": "zh-ic,zh-seh",
                                                                    "trend": "24"})
    assert response.status_code == 200, response.text
    (report,) = [e["resource"] for e in response.json()["entry"]]
    assert report["period"]["start"] < report["period"]["end"]
    ic = _strata(report, "zh-ic")
    assert len(ic) == 25  # hourly, both ends included
    assert _value_at(ic, 15) == (0, 0)  # before the unit's first report it adds nothing
    assert _value_at(ic, 9) == (4, 6)
    assert _value_at(ic, 5) == (4, 6)
    assert _value_at(ic, 1) == (1, 4)  # the smaller report: closed Slots are not counted
    assert _value_at(ic, 0) == (1, 4)
    seh = _strata(report, "zh-seh")
    assert _value_at(seh, 6) == (0, 0) and _value_at(seh, 4) == (3, 3)
    # the current counts (group.population) agree with the last stratum
    total = next(p["count"] for g in report["group"] if g["code"]["coding"][0]["code"] == "zh-ic"
                 for p in g["population"] if p["code"]["coding"][0]["code"] == "total")
    assert total == ic[-1][2]

    national = client.get("/fhir/MeasureReport/$aggregate", params={"category": "zh-seh", "trend": "24",
                                                                    "national": "true"}).json()
    (summed,) = [e["resource"] for e in national["entry"]]
    assert _value_at(_strata(summed, "zh-seh"), 4)[1] >= 3


def test_trend_parameters_are_checked(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fhir/MeasureReport/$aggregate", params={"region": REGION, "trend": "abc"})
    assert response.status_code == 400
    plain = client.get("/fhir/MeasureReport/$aggregate", params={"region": REGION}).json()
    assert all("stratifier" not in g for e in plain["entry"] for g in e["resource"].get("group", []))


def test_moments_end_now_and_step_evenly() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    points = moments(now, 24, 120)
    assert len(points) == 13 and points[-1] == now and points[0] == now - timedelta(hours=24)
