"""The rest-hook outbox on SQLite (one process): pending deliveries are written in the transaction of the
capacity change, survive a process that dies after the commit, are taken over when a claimant's lease
expires, give up visibly, and vanish with a rolled-back write. The 3-instance PostgreSQL version with a real
`kill -9` is tests/reliability/test_outbox_live.py."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.capacity import model
from gateway.capacity.outbox import DELIVERED, GIVEN_UP, PENDING, OutboxWorker
from gateway.capacity.outbox_schema import capacity_outbox
from tests.capacity.conftest import FHIR_JSON, capacity_settings
from tests.capacity.helpers import at, row
from tests.capacity.test_subscriptions import Receiver

REGION = "oost"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def subscription(client, receiver) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/fhir/Subscription", headers=FHIR_JSON, json={
        "resourceType": "Subscription", "status": "requested", "reason": "outbox test",
        "criteria": f"Slot?schedule.region={REGION}",
        "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _report(client: TestClient, key: model.UnitKey, total: int, free: int, minutes_ago: float) -> None:
    response = client.post("/ingest/capacity", json=[row(key.ura, key.location, key.category, total, free,
                                                          at(minutes_ago), REGION)])
    assert response.json()["applied"] == 1, response.text


def _rows(services: Any, subscription: str) -> list[Any]:
    with services.store.engine.connect() as connection:
        return list(connection.execute(select(capacity_outbox).where(
            capacity_outbox.c.subscription_id == subscription).order_by(capacity_outbox.c.id)))


def _delivered_versions(receiver: Receiver, since: int) -> Counter[tuple[str, str]]:
    received: Counter[tuple[str, str]] = Counter()
    for _, body in receiver.received[since:]:
        for entry in json.loads(body)["entry"]:
            received[(entry["resource"]["id"], entry["resource"]["meta"]["versionId"])] += 1
    return received


def _second_process(database_url: str) -> Any:
    """Another gateway process on the same database (a restart): its hub starts its outbox worker."""
    app = create_app(services=build_services(capacity_settings(database_url)))
    return app


def test_a_change_committed_by_a_process_that_dies_before_delivery_is_delivered_by_the_next(
        client, app, services, database_url, receiver, subscription) -> None:  # type: ignore[no-untyped-def]
    hub = app.state.capacity.hub
    hub.outbox.stop()  # this process "dies" between the commit and the delivery: its worker never runs
    before = len(receiver.received)
    try:
        _report(client, model.UnitKey("55555551", "IC-W1", "zh-ic"), 2, 1, 3)
        rows = _rows(services, subscription)
        assert rows and {r.state for r in rows} == {PENDING}  # committed with the change
        assert {r.claimed_by for r in rows} == {None}
        time.sleep(1.5)
        assert len(receiver.received) == before  # nobody delivered it yet
        restarted = _second_process(database_url)
        try:
            with TestClient(restarted):
                receiver.wait_for(before + 1)
                assert restarted.state.capacity.hub.drain(timeout=10)
        finally:
            restarted.state.capacity.hub.stop()
    finally:
        hub.outbox.start()
    written = {(r.resource_id, str(r.version)) for r in rows}
    assert _delivered_versions(receiver, before) == Counter(written)  # each change once, the written versions
    assert {r.state for r in _rows(services, subscription)} == {DELIVERED}


def test_a_claim_whose_holder_died_is_taken_over_after_the_lease(
        client, app, services, database_url, receiver, subscription, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hub = app.state.capacity.hub
    hub.outbox.stop()
    before = len(receiver.received)
    try:
        _report(client, model.UnitKey("55555552", "IC-W2", "zh-ic"), 2, 2, 2)
        monkeypatch.setenv("ZCC_OUTBOX_LEASE", "8")
        dead = OutboxWorker(services.store, lambda *_: pytest.fail("the dead worker delivers nothing"))
        claimed = dead.claim()  # claimed, then the process died mid-delivery
        claimed_at = time.monotonic()
        assert claimed and {r.claims for r in claimed} == {1}
        restarted = _second_process(database_url)
        try:
            with TestClient(restarted):
                time.sleep(max(0.0, claimed_at + 6 - time.monotonic()))
                assert len(receiver.received) == before  # the lease still holds: nobody else touches it
                receiver.wait_for(before + 1, timeout=20)
                assert restarted.state.capacity.hub.drain(timeout=10)
        finally:
            restarted.state.capacity.hub.stop()
    finally:
        hub.outbox.start()
    mine = {r.id for r in claimed}
    rows = [r for r in _rows(services, subscription) if r.id in mine]
    assert {r.state for r in rows} == {DELIVERED}
    assert {r.claims for r in rows} == {2} and dead.name not in {r.claimed_by for r in rows}
    assert _delivered_versions(receiver, before) == Counter((r.resource_id, str(r.version)) for r in rows)


def test_a_claimant_that_is_still_delivering_keeps_its_claim_past_the_lease(
        client, app, services, subscription, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A slow receiver (one delivery longer than the lease) must not make another process POST the same
    notification: the claimant renews its lease while it works; the other worker finds nothing to claim."""
    hub = app.state.capacity.hub
    hub.outbox.stop()
    try:
        _report(client, model.UnitKey("55555553", "IC-W3", "zh-ic"), 1, 1, 1)
        monkeypatch.setenv("ZCC_OUTBOX_LEASE", "1.5")
        delivering, finish = threading.Event(), threading.Event()

        def slow(subscription_id: str, rows: list[Any]) -> tuple[str, str | None]:
            delivering.set()
            finish.wait(10)
            return DELIVERED, None

        slow_worker = OutboxWorker(services.store, slow)
        other = OutboxWorker(services.store, lambda *_: pytest.fail("the claim of a live worker was taken over"))
        thread = threading.Thread(target=slow_worker.work_once)
        thread.start()
        assert delivering.wait(10)
        deadline = time.monotonic() + 4.5  # three leases
        while time.monotonic() < deadline:
            assert other.claim() == []
            time.sleep(0.3)
        finish.set()
        thread.join(10)
    finally:
        hub.outbox.start()
    rows = [r for r in _rows(services, subscription) if r.claimed_by == slow_worker.name]
    assert rows and {r.state for r in rows} == {DELIVERED} and {r.claims for r in rows} == {1}


def test_a_receiver_that_keeps_failing_is_given_up_visibly(client, app, services) -> None:  # type: ignore[no-untyped-def]
    attempts: list[int] = []

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            attempts.append(1)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    failing = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    hub = app.state.capacity.hub
    hub.backoff = 0.05
    try:
        response = client.post("/fhir/Subscription", headers=FHIR_JSON, json={
            "resourceType": "Subscription", "status": "requested", "reason": "failing receiver",
            "criteria": "Slot?schedule.region=limburg",
            "channel": {"type": "rest-hook", "endpoint": f"http://127.0.0.1:{failing.server_address[1]}/hook"}})
        subscription = response.json()["id"]
        unit = model.UnitKey("55555553", "IC-F", "zh-ic")
        reply = client.post("/ingest/capacity", json=[row(unit.ura, unit.location, unit.category, 1, 1, at(1),
                                                           "limburg")])
        assert reply.json()["applied"] == 1
        assert hub.drain(timeout=10)
    finally:
        failing.shutdown()
        hub.backoff = 0.5
    rows = _rows(services, subscription)
    assert rows and {r.state for r in rows} == {GIVEN_UP}
    assert {r.last_error for r in rows} == {"HTTP 500"}
    assert len(attempts) == 3
    assert any(failure.startswith(f"Subscription/{subscription}:") for failure in hub.failures)


def test_a_rolled_back_write_leaves_no_pending_delivery(client, services, subscription) -> None:  # type: ignore[no-untyped-def]
    unit = model.UnitKey("55555554", "IC-W4", "zh-ic")
    _report(client, unit, 1, 1, 5)
    slot = client.get(f"/fhir/Slot/{unit.slot_id(0)}").json()
    with services.store.engine.connect() as connection:
        count_before = connection.execute(select(func.count()).select_from(capacity_outbox)).scalar_one()
    slot["status"] = "busy"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": slot, "request": {"method": "PUT", "url": f"Slot/{slot['id']}"}},
        {"resource": {"resourceType": "Patient", "gender": "not-a-gender"},
         "request": {"method": "POST", "url": "Patient"}},
    ]}
    response = client.post("/fhir", headers=FHIR_JSON, json=bundle)
    assert response.status_code >= 400, response.text
    with services.store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(capacity_outbox)).scalar_one() == count_before
    assert client.get(f"/fhir/Slot/{unit.slot_id(0)}").json()["meta"]["versionId"] == slot["meta"]["versionId"]
