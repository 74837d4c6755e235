"""Live updates: R4 Subscriptions on capacity, delivered over a real websocket and to a real HTTP receiver
on loopback; criteria use normal search (here: region through the schedule); a restart loses none."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway.app import build_services, create_app
from gateway.capacity import model
from gateway.capacity.subscriptions import ActiveSubscription, matching_ids, split_criteria
from gateway.capacity.websocket import PATH
from tests.auth.fixtures import GatewayTokenAuth, obtain_token
from tests.capacity.conftest import FHIR_JSON, capacity_settings
from tests.capacity.helpers import at, row

UTRECHT = model.UnitKey("33333331", "IC-U", "zh-ic")
ROTTERDAM = model.UnitKey("33333332", "IC-R", "zh-ic")


class Receiver:
    """A real HTTP server on a free loopback port that records what rest-hooks POST."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.arrived:
                    receiver.received.append((dict(self.headers), body))
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def _subscription(criteria: str, channel: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested", "reason": "zcc screen", "criteria": criteria,
            "channel": channel}


def _report(client: TestClient, key: model.UnitKey, total: int, free: int, region: str, minutes_ago: float) -> None:
    response = client.post("/ingest/capacity", json=[row(key.ura, key.location, key.category, total, free,
                                                          at(minutes_ago), region)])
    assert response.json()["applied"] == 1, response.text


def test_websocket_delivery_for_matching_changes_only(client, app, database_url) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(
        "Slot?schedule.region=midden-nederland&status=free",
        {"type": "websocket", "payload": "application/fhir+json"}))
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["status"] == "active"
    token = obtain_token(app, database_url)["access_token"]
    with client.websocket_connect(PATH, headers={"Authorization": f"Bearer {token}"}) as socket:
        socket.send_text(f"bind {subscription['id']}")
        assert socket.receive_text() == f"bound {subscription['id']}"
        _report(client, ROTTERDAM, 3, 3, "zuidwest", 3)  # other region: no notification
        _report(client, UTRECHT, 4, 2, "midden-nederland", 2)
        assert socket.receive_text() == f"ping {subscription['id']}"
        bundle = json.loads(socket.receive_text())
        assert bundle["type"] == "history"
        assert {e["resource"]["id"] for e in bundle["entry"]} == {UTRECHT.slot_id(0), UTRECHT.slot_id(1)}
        socket.send_text("bind does-not-exist")
        assert socket.receive_text().startswith("error")


def test_websocket_needs_a_token(app) -> None:  # type: ignore[no-untyped-def]
    anonymous = TestClient(app)  # the module's client adds a token to every request, the upgrade included
    with pytest.raises(WebSocketDisconnect) as refused, anonymous.websocket_connect(PATH) as socket:
        socket.receive_text()
    assert refused.value.code == 1008


def test_rest_hook_delivery_to_a_real_receiver(client, app, receiver) -> None:  # type: ignore[no-untyped-def]
    created = client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(
        "Slot?service-type=zh-ic&schedule.region=zuidwest",
        {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json",
         "header": ["Authorization: Bearer zcc-screen-secret"]}))
    assert created.status_code == 201, created.text
    before = len(receiver.received)
    _report(client, ROTTERDAM, 3, 1, "zuidwest", 1)
    headers, body = receiver.wait_for(before + 1)[before]
    assert headers["Authorization"] == "Bearer zcc-screen-secret"
    notification = json.loads(body)
    assert {e["resource"]["status"] for e in notification["entry"]} == {"free", "busy"}
    assert len(notification["entry"]) == 3


def test_bad_subscriptions_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    for criteria, channel in [("Slot?nonsense=1", {"type": "websocket"}), ("Slot?status=free", {"type": "email"}),
                              ("Slot?status=free", {"type": "rest-hook"})]:
        response = client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(criteria, channel))
        assert response.status_code == 422, (criteria, channel, response.text)


def test_a_restart_does_not_lose_subscriptions(client, database_url, receiver) -> None:  # type: ignore[no-untyped-def]
    client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(
        "Slot?service-type=zh-ic&schedule.region=oost", {"type": "rest-hook", "endpoint": receiver.url}))
    services = build_services(capacity_settings(database_url))  # a second process on the same database
    restarted = create_app(services=services)
    try:
        with TestClient(restarted) as second:
            second.auth = GatewayTokenAuth(restarted, database_url)
            before = len(receiver.received)
            _report(second, model.UnitKey("33333333", "IC-N", "zh-ic"), 2, 2, "oost", 1)
            headers, body = receiver.wait_for(before + 1)[before]
            assert body == b""  # no payload asked: an empty POST, as R4 says
    finally:
        restarted.state.capacity.hub.stop()


@pytest.fixture(scope="module")
def limburg_unit(client) -> model.UnitKey:  # type: ignore[no-untyped-def]
    key = model.UnitKey("33333334", "IC-M", "zh-ic")
    _report(client, key, 2, 1, "limburg", 0.5)
    return key


@pytest.mark.parametrize("criteria, matches", [
    ("Slot?schedule.region=limburg&status=free", {0}),
    ("Slot?schedule:Schedule.region=limburg", {0, 1}),
    ("Slot?schedule.region=zuidwest", set()),
    ("Slot?schedule:HealthcareService.region=limburg", set()),  # the reference is to a Schedule
    ("Slot?schedule.active=true&schedule.region=limburg&status=busy", {1}),
])
def test_chained_criteria_match_from_the_changed_slots(services, limburg_unit, criteria, matches) -> None:  # type: ignore[no-untyped-def]
    key = limburg_unit
    resource_type, params = split_criteria(criteria)
    subscription = ActiveSubscription("s", resource_type, tuple(params), "websocket", None, "", (), None)
    found = matching_ids(services, subscription, [key.slot_id(0), key.slot_id(1)])
    assert set(found) == {key.slot_id(i) for i in matches}


def test_a_slow_rest_hook_receiver_does_not_delay_websockets(client, app, database_url) -> None:  # type: ignore[no-untyped-def]
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            time.sleep(8)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    slow = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    try:
        criteria = "Slot?schedule.region=brabant"
        for channel in ({"type": "rest-hook", "endpoint": f"http://127.0.0.1:{slow.server_address[1]}/hook"},
                        {"type": "websocket"}):
            created = client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(criteria, channel))
            assert created.status_code == 201, created.text
        websocket_id = created.json()["id"]
        token = obtain_token(app, database_url)["access_token"]
        with client.websocket_connect(PATH, headers={"Authorization": f"Bearer {token}"}) as socket:
            socket.send_text(f"bind {websocket_id}")
            assert socket.receive_text() == f"bound {websocket_id}"
            unit = model.UnitKey("33333335", "IC-B", "zh-ic")
            _report(client, unit, 2, 1, "brabant", 2)  # the rest-hook worker is now busy for 5 s and more
            started = time.monotonic()
            _report(client, unit, 2, 2, "brabant", 1)
            assert socket.receive_text() == f"ping {websocket_id}"
            assert socket.receive_text() == f"ping {websocket_id}"
            assert time.monotonic() - started < 4, "the websocket waited for the slow rest-hook"
    finally:
        slow.shutdown()


def test_the_browser_route_wants_a_valid_token_first(client, app, database_url) -> None:  # type: ignore[no-untyped-def]
    from gateway.capacity.websocket import BROWSER_PATH

    anonymous = TestClient(app)  # no Authorization header: browsers cannot send one on a websocket
    for first in ("bind something", "token not-a-jwt"):
        with anonymous.websocket_connect(BROWSER_PATH) as socket:
            socket.send_text(first)
            assert socket.receive_text().startswith("error ")
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_text()
            assert closed.value.code == 1008
    created = client.post("/fhir/Subscription", headers=FHIR_JSON, json=_subscription(
        "Slot?schedule.region=zwolle", {"type": "websocket"}))
    token = obtain_token(app, database_url)["access_token"]
    with anonymous.websocket_connect(BROWSER_PATH) as socket:
        socket.send_text(f"token {token}")
        assert socket.receive_text() == "authenticated"
        socket.send_text(f"bind {created.json()['id']}")
        assert socket.receive_text() == f"bound {created.json()['id']}"
        _report(client, model.UnitKey("33333336", "IC-Z", "zh-ic"), 1, 1, "zwolle", 1)
        assert socket.receive_text() == f"ping {created.json()['id']}"
