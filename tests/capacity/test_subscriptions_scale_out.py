"""Capacity Subscriptions across instances: three `zcc-gateway serve` processes on one PostgreSQL (a server of
this module alone: it is restarted at the end). A Slot change written through any instance reaches a websocket
client on any other instance exactly once, and a rest-hook receiver on loopback gets each notification exactly
once (from the transactional outbox: one claimant per row); after a PostgreSQL restart the listeners reconnect
by themselves and nothing written afterwards is missed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from gateway.capacity import model
from gateway.capacity.websocket import PATH
from tests.auth.fixtures import obtain_auth_header
from tests.capacity.test_subscriptions import Receiver
from tests.pg import PostgresUnavailableError, TemporaryPostgres, fresh_database, start_temporary_postgres
from tests.reliability.live import GatewayProcess, gateway_cluster
from tests.reliability.test_faults_live import pg_ctl

pytestmark = pytest.mark.postgres
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
UNIT = model.UnitKey("44444441", "IC-SO", "zh-ic")
STARTUP = 300.0
QUIET = 2.0  # seconds without a further message before "exactly once" is concluded


@pytest.fixture(scope="module")
def postgres() -> Iterator[TemporaryPostgres]:
    try:
        server = start_temporary_postgres()
    except PostgresUnavailableError as error:
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(postgres: TemporaryPostgres, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[list[GatewayProcess], dict[str, str]]]:
    database_url = fresh_database(postgres.url, "capsub")
    gateways = gateway_cluster(3, database_url, tmp_path_factory.mktemp("capsub"), ZCC_DB_TIMEOUT="3")
    try:
        gateways[0].start(timeout=STARTUP)  # migrations and key ring first; the shared build box can be slow
        for gateway in gateways[1:]:
            gateway.launch()
        for gateway in gateways[1:]:
            gateway.wait_ready(timeout=STARTUP)
        yield gateways, {**FHIR_JSON, **obtain_auth_header(gateways[0].origin, database_url)}
    finally:
        for gateway in gateways:
            gateway.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def subscriptions(cluster, receiver) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A websocket Subscription created on instance 0, a rest-hook one created on instance 2."""
    gateways, headers = cluster
    created = {}
    for name, gateway, channel in [
        ("websocket", gateways[0], {"type": "websocket", "payload": "application/fhir+json"}),
        ("rest-hook", gateways[2], {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}),
    ]:
        response = httpx.post(f"{gateway.base}/Subscription", headers=headers, json={
            "resourceType": "Subscription", "status": "requested", "reason": "zcc screen",
            "criteria": "Slot?schedule.region=noord-nederland&service-type=zh-ic", "channel": channel})
        assert response.status_code == 201, response.text
        created[name] = response.json()["id"]
    return created


@contextmanager
def _websocket(gateway: GatewayProcess, headers: dict[str, str], subscription: str) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{gateway.port}{PATH}",
                 additional_headers={"Authorization": headers["Authorization"]}, open_timeout=10) as socket:
        socket.send(f"bind {subscription}")
        assert socket.recv(timeout=10) == f"bound {subscription}"
        yield socket


def _report(gateway: GatewayProcess, headers: dict[str, str], stamp: datetime, free: int) -> httpx.Response:
    row = {"ura": UNIT.ura, "location": UNIT.location, "category": UNIT.category, "total": 2, "free": free,
           "timestamp": model.instant(stamp), "region": "noord-nederland"}
    return httpx.post(f"{gateway.origin}/ingest/capacity", headers=headers, json=[row], timeout=20)


def _received_reports(socket: ClientConnection, subscription: str, quiet: float = QUIET) -> list[str]:
    """Every notification until the socket stays quiet: the Slot start (= the report's source time) of each."""
    starts: list[str] = []
    while True:
        try:
            ping = socket.recv(timeout=quiet)
        except TimeoutError:
            return starts
        assert ping == f"ping {subscription}"
        bundle = json.loads(socket.recv(timeout=5))
        starts.append(_report_of(bundle))


def _report_of(bundle: dict[str, Any]) -> str:
    starts = {entry["resource"]["start"] for entry in bundle["entry"]}
    assert len(starts) == 1, starts  # one notification per committed report, never a mix
    return starts.pop()


def _hook_reports(receiver: Receiver, already: int, expected: int) -> list[str]:
    """What the receiver got since `already`: at least `expected` POSTs (waited for), then until quiet."""
    receiver.wait_for(already + expected, timeout=60)
    previous = -1
    while previous != len(receiver.received):  # until no further POST arrives for a while
        previous = len(receiver.received)
        time.sleep(QUIET)
    return [_report_of(json.loads(body)) for _, body in receiver.received[already:]]


def test_changes_written_anywhere_reach_every_subscriber_exactly_once(cluster, subscriptions, receiver) -> None:  # type: ignore[no-untyped-def]
    gateways, headers = cluster
    already = len(receiver.received)
    with ExitStack() as stack:
        sockets = [stack.enter_context(_websocket(gateway, headers, subscriptions["websocket"]))
                   for gateway in gateways[1:]]
        base = datetime.now(UTC) - timedelta(minutes=10)
        expected = []
        for n in range(6):  # through every instance in turn, the one the Subscription was created on too
            stamp = base + timedelta(seconds=n)
            response = _report(gateways[n % 3], headers, stamp, free=n % 2)
            assert response.json()["applied"] == 1, response.text
            expected.append(model.instant(stamp))
        for socket in sockets:
            assert Counter(_received_reports(socket, subscriptions["websocket"])) == Counter(expected)
    assert Counter(_hook_reports(receiver, already, len(expected))) == Counter(expected)


def test_a_subscription_created_on_one_instance_binds_on_another_at_once(cluster, receiver) -> None:  # type: ignore[no-untyped-def]
    gateways, headers = cluster
    response = httpx.post(f"{gateways[0].base}/Subscription", headers=headers, json={
        "resourceType": "Subscription", "status": "requested", "reason": "zcc screen",
        "criteria": "Slot?schedule.region=noord-nederland", "channel": {"type": "websocket"}})
    assert response.status_code == 201, response.text
    already = len(receiver.received)
    stamp = datetime.now(UTC) - timedelta(minutes=5)
    with _websocket(gateways[2], headers, response.json()["id"]) as socket:  # no wait, no reload call
        assert _report(gateways[1], headers, stamp, 1).json()["applied"] == 1
        assert socket.recv(timeout=10) == f"ping {response.json()['id']}"
    assert _hook_reports(receiver, already, 1) == [model.instant(stamp)]  # the older rest-hook, once


def test_listeners_reconnect_after_a_postgres_restart(cluster, subscriptions, receiver, postgres,
                                                      tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gateways, headers = cluster
    already = len(receiver.received)
    with _websocket(gateways[1], headers, subscriptions["websocket"]) as socket:
        pg_ctl(postgres, "stop")
        time.sleep(1)
        pg_ctl(postgres, "start")
        base, expected = datetime.now(UTC) - timedelta(minutes=2), []
        deadline = time.monotonic() + 30
        n = 0
        while len(expected) < 3 and time.monotonic() < deadline:  # the first writes may still get 503
            stamp = base + timedelta(seconds=n)
            response = _report(gateways[n % 3], headers, stamp, free=n % 2)
            n += 1
            if response.status_code == 200 and response.json()["applied"] == 1:
                expected.append(model.instant(stamp))
            else:
                time.sleep(0.5)
        assert len(expected) == 3, "the gateways did not serve again after the restart"
        received = _received_reports(socket, subscriptions["websocket"], quiet=QUIET * 2)
        # what was written while this instance's listener was away is caught up (the current state of the
        # changed Slots), so a change may come twice — or an older state once more — but never 0 times
        assert set(expected) <= set(received), (received, expected)
        assert all(start in expected or start < expected[0] for start in received), (received, expected)
    assert Counter(_hook_reports(receiver, already, len(expected))) == Counter(expected)
