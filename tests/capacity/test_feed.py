"""The bed-status feed (CSV, JSON, SANER MeasureReport): counts become Slots, idempotent, last writer by
source timestamp wins, out-of-order and duplicate rows ignored, malformed rows rejected with their reason,
and the raw message kept either way. Plus the write-time rules for FHIR-fed Slots."""

from __future__ import annotations

from gateway.capacity import model
from gateway.capacity.urls import CATEGORY_SYSTEM, POPULATION_SYSTEM, URA_SYSTEM
from tests.capacity.conftest import FHIR_JSON
from tests.capacity.helpers import at, row, slots_of

KEY = model.UnitKey("11111111", "IC-Noord", "zh-ic")


def test_counts_become_slots_and_reductions_close_slots(client) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/ingest/capacity", json=[row(KEY.ura, KEY.location, "zh-ic", 5, 2, at(30))])
    assert first.status_code == 200, first.text
    assert first.json()["applied"] == 1
    assert sorted(slots_of(client, KEY.schedule_id).values()) == ["busy", "busy", "busy", "free", "free"]

    reported = at(20)
    smaller = client.post("/ingest/capacity", json=[row(KEY.ura, KEY.location, "zh-ic", 3, 3, reported)])
    assert smaller.json()["applied"] == 1
    statuses = slots_of(client, KEY.schedule_id)
    assert sorted(statuses.values()) == ["busy-unavailable", "busy-unavailable", "free", "free", "free"]
    assert statuses[KEY.slot_id(4)] == "busy-unavailable"
    schedule = client.get(f"/fhir/Schedule/{KEY.schedule_id}").json()
    assert model.source_timestamp(schedule) == reported


def test_out_of_order_and_duplicate_rows_change_nothing(client) -> None:  # type: ignore[no-untyped-def]
    key = model.UnitKey("11111112", "ELV-1", "elv-laagcomplex")
    newest = at(5)
    client.post("/ingest/capacity", json=[row(key.ura, key.location, key.category, 4, 1, newest)])
    version = client.get(f"/fhir/Schedule/{key.schedule_id}").json()["meta"]["versionId"]
    response = client.post("/ingest/capacity", json=[
        row(key.ura, key.location, key.category, 4, 4, at(60)),  # older: out of order
        row(key.ura, key.location, key.category, 4, 3, newest),  # same timestamp: duplicate
    ])
    body = response.json()
    assert response.status_code == 200
    assert [r["verdict"] for r in body["rows"]] == ["out-of-order", "duplicate"]
    assert client.get(f"/fhir/Schedule/{key.schedule_id}").json()["meta"]["versionId"] == version
    assert sorted(slots_of(client, key.schedule_id).values()) == ["busy", "busy", "busy", "free"]


def test_the_same_file_twice_is_a_duplicate_message(client) -> None:  # type: ignore[no-untyped-def]
    payload = f"ura,location,category,total,free,timestamp\n11111113,GRZ,grz-bed,2,1,{at(3)}\n".encode()
    first = client.post("/ingest/capacity", content=payload, headers={"Content-Type": "text/csv"})
    again = client.post("/ingest/capacity", content=payload, headers={"Content-Type": "text/csv"})
    assert first.json()["status"] == "accepted" and first.json()["applied"] == 1
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_malformed_rows_are_rejected_with_reasons_and_the_rest_applied(client) -> None:  # type: ignore[no-untyped-def]
    csv = (
        "ura;location;category;total;free;timestamp\n"
        f"11111114;SEH;zh-seh;6;2;{at(2)}\n"
        f"1234;SEH;zh-seh;6;2;{at(2)}\n"
        f"11111114;SEH;ziekenhuis;6;2;{at(2)}\n"
        f"11111114;SEH;zh-seh;2;6;{at(2)}\n"
        f"11111114;SEH;zh-seh;x;1;{at(2)}\n"
        "11111114;SEH;zh-seh;6;2;2025-01-01T10:00:00\n"
    ).encode()
    response = client.post("/ingest/capacity", content=csv, headers={"Content-Type": "text/csv"})
    body = response.json()
    assert response.status_code == 200, body
    verdicts = {r["row"]: (r["verdict"], r.get("field")) for r in body["rows"]}
    assert verdicts == {0: ("applied", None), 1: ("rejected", "ura"), 2: ("rejected", "category"),
                        3: ("rejected", "free"), 4: ("rejected", "total"), 5: ("rejected", "timestamp")}
    record = client.get(response.headers["Location"].replace("http://testserver", "")).json()
    assert record["status"] == "accepted"
    assert any("row[3].free" in i.get("expression", []) for i in record["outcome"]["issue"])


def test_a_feed_with_only_bad_rows_or_no_rows_is_rejected_and_kept(client) -> None:  # type: ignore[no-untyped-def]
    bad = client.post("/ingest/capacity", json=[{"ura": "11111115"}])
    assert bad.status_code == 422 and bad.json()["status"] == "rejected"
    garbage = client.post("/ingest/capacity", content=b"\x00\x01 not a feed", headers={"Content-Type": "text/csv"})
    assert garbage.status_code == 400
    record = client.get(garbage.headers["Location"].replace("http://testserver", "")).json()
    assert record["status"] == "rejected" and record["outcome"]["issue"][0]["code"] == "structure"


def _population(code: str, count: int) -> dict:
    return {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": code}]}, "count": count}


def test_saner_measure_report_input(client) -> None:  # type: ignore[no-untyped-def]
    report = {
        "resourceType": "MeasureReport", "status": "complete", "type": "summary",
        "measure": "https://zcc-gateway.nl/fhir/Measure/capacity", "date": at(4),
        "reporter": {"identifier": {"system": URA_SYSTEM, "value": "11111116"}},
        "subject": {"identifier": {"system": "urn:example:locations", "value": "GGZ-Crisis"}},
        "period": {"start": at(4), "end": at(4)},
        "group": [{"code": {"coding": [{"system": CATEGORY_SYSTEM, "code": "ggz-crisisbed"}]},
                   "population": [_population("total", 3), _population("occupied", 1)]}],
    }
    response = client.post("/ingest/capacity", json=report, headers=FHIR_JSON)
    assert response.json()["applied"] == 1, response.text
    key = model.UnitKey("11111116", "GGZ-Crisis", "ggz-crisisbed")
    assert sorted(slots_of(client, key.schedule_id).values()) == ["busy", "free", "free"]


def test_fhir_fed_capacity_slots_must_follow_the_rules(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/ingest/capacity", json=[row(KEY.ura, KEY.location, "zh-ic", 3, 3, at(10))])
    slot = client.get(f"/fhir/Slot/{KEY.slot_id(0)}").json()
    slot["status"] = "busy"
    ok = client.put(f"/fhir/Slot/{KEY.slot_id(0)}", json=slot, headers=FHIR_JSON)
    assert ok.status_code == 200, ok.text
    broken = {k: v for k, v in slot.items() if k not in {"extension", "meta"}}
    refused = client.put(f"/fhir/Slot/{KEY.slot_id(0)}", json=broken, headers=FHIR_JSON)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["Slot.extension"]
    group_code = {**slot, "serviceType": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "ziekenhuis"}]}]}
    assert client.put(f"/fhir/Slot/{KEY.slot_id(0)}", json=group_code, headers=FHIR_JSON).status_code == 422
