"""Finding capacity: R4 Slot/Schedule searches (chaining, _include, region through the schedule),
`$find-capacity` nearest-first with regions and neighbours, `$aggregate` after updates, and staleness."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.capacity import model
from gateway.capacity.urls import CATEGORY_SYSTEM
from tests.capacity.conftest import FHIR_JSON
from tests.capacity.helpers import at, ids, population, row

UTRECHT = model.UnitKey("22222221", "IC-Utrecht", "zh-ic")
AMERSFOORT = model.UnitKey("22222222", "IC-Amersfoort", "zh-ic")
ROTTERDAM = model.UnitKey("22222223", "IC-Rotterdam", "zh-ic")
NIJMEGEN_OLD = model.UnitKey("22222224", "IC-Nijmegen", "zh-ic")
SEH = model.UnitKey("22222221", "SEH-Utrecht", "zh-seh")


def _place(client: Any, key: model.UnitKey, city: str, postcode: str, lat: float, lon: float, region: str) -> None:
    """Register the provider's Location first (with address and position), as a provider registry would."""
    terms = client.app.state.capacity.terms
    location = model.location(key, f"{city} {key.location}", terms.regions[region], city, postcode, (lat, lon))
    response = client.put(f"/fhir/Location/{key.location_id}", json=location, headers=FHIR_JSON)
    assert response.status_code in {200, 201}, response.text


@pytest.fixture(scope="module")
def region_data(client):  # type: ignore[no-untyped-def]
    _place(client, UTRECHT, "Utrecht", "3584 CX", 52.087, 5.179, "midden-nederland")
    _place(client, AMERSFOORT, "Amersfoort", "3813 TZ", 52.168, 5.367, "midden-nederland")
    _place(client, ROTTERDAM, "Rotterdam", "3015 GD", 51.911, 4.468, "zuidwest")
    _place(client, NIJMEGEN_OLD, "Nijmegen", "6525 GA", 51.825, 5.864, "oost")
    _place(client, SEH, "Utrecht", "3584 CX", 52.087, 5.179, "midden-nederland")
    rows = [
        row(UTRECHT.ura, UTRECHT.location, "zh-ic", 8, 2, at(10), None),
        row(AMERSFOORT.ura, AMERSFOORT.location, "zh-ic", 4, 4, at(10), None),
        row(ROTTERDAM.ura, ROTTERDAM.location, "zh-ic", 10, 0, at(10), None),
        row(NIJMEGEN_OLD.ura, NIJMEGEN_OLD.location, "zh-ic", 6, 3, at(600), None),  # 10 h old: stale (IC: 2 h)
        row(SEH.ura, SEH.location, "zh-seh", 5, 1, at(10), None),
    ]
    response = client.post("/ingest/capacity", json=rows)
    assert response.json()["applied"] == 5, response.text


def _search(client: Any, resource_type: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/fhir/{resource_type}", params=[*params, ("_count", "500")])
    assert response.status_code == 200, response.text
    return response.json()


def test_free_slots_by_service_type_and_start(client, region_data) -> None:  # type: ignore[no-untyped-def]
    bundle = _search(client, "Slot", [("status", "free"), ("service-type", f"{CATEGORY_SYSTEM}|zh-ic"),
                                      ("start", f"ge{at(60)}")])
    assert ids(bundle) == {f"Slot/{UTRECHT.slot_id(i)}" for i in range(2)} | {
        f"Slot/{AMERSFOORT.slot_id(i)}" for i in range(4)}
    assert _search(client, "Slot", [("status", "free"), ("service-type", "zh-ic"), ("start", f"ge{at(-5)}")]
                   ).get("entry") is None


def test_slots_by_schedule_actor_location_and_chains(client, region_data) -> None:  # type: ignore[no-untyped-def]
    by_location = _search(client, "Slot", [("schedule.actor", f"Location/{UTRECHT.location_id}")])
    assert len(ids(by_location)) == 8
    by_region = _search(client, "Slot", [("schedule.region", "zuidwest"), ("status", "busy")])
    assert len(ids(by_region)) == 10
    schedules = _search(client, "Schedule", [("actor", f"Location/{UTRECHT.location_id}"), ("active", "true"),
                                             ("service-type", "zh-ic")])
    assert ids(schedules) == {f"Schedule/{UTRECHT.schedule_id}"}


@pytest.mark.parametrize("chain", ["schedule.actor:HealthcareService.location.address-city",
                                   "schedule.actor:Location.address-city"])
def test_multi_level_chains_from_the_issue(client, region_data, chain) -> None:  # type: ignore[no-untyped-def]
    by_city = _search(client, "Slot", [(chain, "Amersfoort")])
    assert ids(by_city) == {f"Slot/{AMERSFOORT.slot_id(i)}" for i in range(4)}


def test_include_schedule_and_iterate_actor(client, region_data) -> None:  # type: ignore[no-untyped-def]
    bundle = _search(client, "Slot", [("schedule", f"Schedule/{AMERSFOORT.schedule_id}"),
                                      ("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor")])
    assert len(ids(bundle)) == 4
    assert ids(bundle, "include") == {f"Schedule/{AMERSFOORT.schedule_id}",
                                      f"HealthcareService/{AMERSFOORT.service_id}",
                                      f"Location/{AMERSFOORT.location_id}"}


def test_find_capacity_nearest_first_with_free_counts(client, region_data) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fhir/Slot/$find-capacity", params={"category": "zh-ic", "near": "52.10|5.20"})
    assert response.status_code == 200, response.text
    reports = [e["resource"] for e in response.json()["entry"] if e["search"]["mode"] == "match"]
    subjects = [r["subject"]["reference"] for r in reports]
    # Rotterdam has nothing free: not listed; Nijmegen is listed although stale, and marked
    assert subjects == [f"Location/{k.location_id}" for k in (UTRECHT, AMERSFOORT, NIJMEGEN_OLD)]
    assert population(reports[0], "zh-ic")["free"] == 2 and population(reports[0], "zh-ic")["total"] == 8
    stale = {r["subject"]["reference"]: model.extension_value(r, "https://zcc-gateway.nl/fhir/StructureDefinition/capacity-stale")
             for r in reports}
    assert stale[f"Location/{NIJMEGEN_OLD.location_id}"] is True
    assert stale[f"Location/{UTRECHT.location_id}"] is False


def test_find_capacity_by_region_neighbours_postcode_and_group(client, region_data) -> None:  # type: ignore[no-untyped-def]
    def subjects(**params: str) -> list[str]:
        response = client.get("/fhir/Slot/$find-capacity", params=params)
        assert response.status_code == 200, response.text
        return [e["resource"]["subject"]["reference"] for e in response.json().get("entry", [])
                if e["search"]["mode"] == "match"]

    assert set(subjects(category="zh-ic", region="midden-nederland")) == {
        f"Location/{UTRECHT.location_id}", f"Location/{AMERSFOORT.location_id}"}
    assert f"Location/{NIJMEGEN_OLD.location_id}" in subjects(category="zh-ic", region="midden-nederland",
                                                             neighbours="true")
    assert subjects(category="zh-ic", postcode="6525GA")[0] == f"Location/{NIJMEGEN_OLD.location_id}"
    assert set(subjects(category="ziekenhuis", region="midden-nederland")) == {
        f"Location/{UTRECHT.location_id}", f"Location/{AMERSFOORT.location_id}", f"Location/{SEH.location_id}"}
    assert f"Location/{ROTTERDAM.location_id}" in subjects(category="zh-ic", **{"include-empty": "true"})
    assert subjects(category="zh-ic", at=at(-60 * 30)) == []  # 30 h ahead: beyond every Slot's end


@pytest.mark.parametrize("params, code", [({}, "required"), ({"category": "nope"}, "code-invalid"),
                                          ({"category": "zh-ic", "region": "atlantis"}, "code-invalid"),
                                          ({"category": "zh-ic", "near": "north"}, "invalid"),
                                          ({"category": "zh-ic", "postcode": "9999 ZZ"}, "not-found")])
def test_find_capacity_refuses_bad_parameters(client, region_data, params, code) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fhir/Slot/$find-capacity", params=params)
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == code


def test_aggregates_follow_updates(client, region_data) -> None:  # type: ignore[no-untyped-def]
    def ic(region: str) -> dict[str, int]:
        response = client.get("/fhir/MeasureReport/$aggregate", params={"region": region, "category": "ziekenhuis"})
        assert response.status_code == 200, response.text
        (report,) = [e["resource"] for e in response.json()["entry"]]
        assert model.region_code(report) == region
        return population(report, "zh-ic")

    before = ic("midden-nederland")
    assert (before["total"], before["free"], before["occupied"], before["stale"]) == (12, 6, 6, 0)
    client.post("/ingest/capacity", json=[row(AMERSFOORT.ura, AMERSFOORT.location, "zh-ic", 2, 0, at(1), None)])
    after = ic("midden-nederland")
    assert (after["total"], after["free"], after["occupied"], after["unavailable"]) == (10, 2, 8, 2)
    assert ic("oost")["stale"] == 6
    national = client.get("/fhir/MeasureReport/$aggregate", params={"category": "zh-ic", "national": "true"}).json()
    (report,) = [e["resource"] for e in national["entry"]]
    assert model.region_code(report) is None
    assert population(report, "zh-ic")["total"] == 10 + 10 + 6
    client.post("/ingest/capacity", json=[row(AMERSFOORT.ura, AMERSFOORT.location, "zh-ic", 4, 4, at(0.5), None)])


def test_stale_slots_can_be_found_by_source_timestamp(client, region_data) -> None:  # type: ignore[no-untyped-def]
    bundle = _search(client, "Slot", [("source-timestamp", f"lt{at(120)}"), ("service-type", "zh-ic")])
    assert ids(bundle) == {f"Slot/{NIJMEGEN_OLD.slot_id(i)}" for i in range(6)}
