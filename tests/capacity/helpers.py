"""Small builders shared by the capacity tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.capacity import model


def at(minutes_ago: float = 0.0) -> str:
    return model.instant(datetime.now(UTC) - timedelta(minutes=minutes_ago))


def row(ura: str, location: str, category: str, total: int, free: int, timestamp: str,
        region: str | None = "midden-nederland") -> dict[str, Any]:
    values: dict[str, Any] = {"ura": ura, "location": location, "category": category, "total": total, "free": free,
                              "timestamp": timestamp}
    if region:
        values["region"] = region
    return values


def slots_of(client: Any, schedule_id: str) -> dict[str, str]:
    bundle = client.get("/fhir/Slot", params={"schedule": f"Schedule/{schedule_id}", "_count": 500}).json()
    return {e["resource"]["id"]: e["resource"]["status"] for e in bundle.get("entry", [])}


def ids(bundle: dict[str, Any], mode: str = "match") -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode", "match") == mode}


def population(report: dict[str, Any], category: str) -> dict[str, int]:
    for group in report.get("group", []):
        if group["code"]["coding"][0]["code"] == category:
            return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    raise KeyError(category)
