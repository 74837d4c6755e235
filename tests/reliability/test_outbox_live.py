"""Rest-hook delivery survives `kill -9` (3 × `zcc-gateway serve` + PostgreSQL): the instance that claimed a
pending delivery is killed while its POST is in flight, and another instance delivers the notification after
the claim's lease expired — the same changed versions, from the outbox row written with the change.

Verdict: at-least-once. The receiver holds the first POST without answering (so the crash falls between
"claimed" and "delivered"); after the kill one surviving instance takes the row over (`claims` = 2, never 3:
the survivor renews its lease while it delivers), POSTs it and marks it `delivered`. Every POST that arrives
carries exactly the written versions; a second one would be the survivor's own retry after a receiver that did
not answer within the 5 s timeout (this receiver runs in the test process, which a loaded CI box can stall).
The lease renewal itself is checked in tests/capacity/test_subscription_outbox.py (a delivery slower than the
lease)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.capacity import model
from gateway.capacity.outbox import DELIVERED
from gateway.capacity.outbox_schema import capacity_outbox
from gateway.store.engine import create_database_engine
from tests.auth.fixtures import obtain_auth_header
from tests.pg import fresh_database
from tests.reliability.live import gateway_cluster, start_all

pytestmark = pytest.mark.postgres
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
LEASE = 4.0
UNIT = model.UnitKey("66666661", "IC-K9", "zh-ic")


class HoldingReceiver:
    """Holds the first POST without answering (until released); answers every later one with 204."""

    def __init__(self) -> None:
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        self.completed: list[bytes] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not receiver.first_arrived.is_set():
                    receiver.first_arrived.set()
                    receiver.release.wait(60)
                    return  # never answered: the sender is dead by now
                with receiver.lock:
                    receiver.completed.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    receiver = HoldingReceiver()
    yield receiver
    receiver.release.set()
    receiver.server.shutdown()


def _claimant_pid(rows: list[Any]) -> int | None:
    claimed = {row.claimed_by for row in rows if row.claimed_by}
    return int(claimed.pop().split(":")[1]) if len(claimed) == 1 else None


def test_a_delivery_in_flight_on_a_killed_instance_is_delivered_by_another(
        pg_url: str, tmp_path: Path, receiver: HoldingReceiver) -> None:
    database_url = fresh_database(pg_url, "outbox")
    gateways = gateway_cluster(3, database_url, tmp_path, ZCC_OUTBOX_LEASE=str(LEASE), ZCC_DB_TIMEOUT="3")
    engine = create_database_engine(database_url)
    try:
        start_all(gateways)
        headers = {**FHIR_JSON, **obtain_auth_header(gateways[0].origin, database_url)}
        created = httpx.post(f"{gateways[0].base}/Subscription", headers=headers, json={
            "resourceType": "Subscription", "status": "requested", "reason": "kill -9",
            "criteria": "Slot?schedule.region=zuidwest",
            "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}})
        assert created.status_code == 201, created.text
        subscription = created.json()["id"]
        stamp = model.instant(datetime.now(UTC) - timedelta(minutes=1))
        row = {"ura": UNIT.ura, "location": UNIT.location, "category": UNIT.category, "total": 2, "free": 1,
               "timestamp": stamp, "region": "zuidwest"}
        reply = httpx.post(f"{gateways[1].origin}/ingest/capacity", headers=headers, json=[row], timeout=30)
        assert reply.json()["applied"] == 1, reply.text

        assert receiver.first_arrived.wait(20), "no instance attempted the delivery"
        rows = _rows(engine, subscription)
        written = {(r.resource_id, r.version) for r in rows}
        assert len(written) == 2 and {r.claims for r in rows} == {1}
        pid = _claimant_pid(rows)
        victim = next(g for g in gateways if g.process is not None and g.process.pid == pid)
        victim.kill()  # kill -9 between "claimed" and "delivered"
        receiver.release.set()
        survivors = [g for g in gateways if g is not victim]

        deadline = time.monotonic() + LEASE + 30
        while time.monotonic() < deadline and not receiver.completed:
            time.sleep(0.2)
        assert receiver.completed, "nobody delivered the notification of the killed instance"
        time.sleep(2)  # nothing more arrives
        for body in receiver.completed:  # one POST; a repeat only if this receiver was too slow to answer in 5 s
            bundle = json.loads(body)
            delivered = {(e["resource"]["id"], int(e["resource"]["meta"]["versionId"])) for e in bundle["entry"]}
            assert delivered == written
        rows = _rows(engine, subscription)
        assert {r.state for r in rows} == {DELIVERED}
        assert {r.claims for r in rows} == {2}  # taken over once: the survivor's lease is kept while it delivers
        assert _claimant_pid(rows) in {g.process.pid for g in survivors if g.process is not None}
    finally:
        engine.dispose()
        for gateway in gateways:
            gateway.stop()


def _rows(engine: Any, subscription: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(capacity_outbox).where(
            capacity_outbox.c.subscription_id == subscription)))
