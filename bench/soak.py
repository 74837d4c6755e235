"""Sustained mixed load against N gateway instances + one PostgreSQL server, from this (separate) process.

Starts a throw-away PostgreSQL cluster (or uses --database-url), N `zcc-gateway serve` processes sharing it
(as behind a load balancer), and client threads that spread requests round-robin over the instances:
reads, searches, `$summary`, creates, HAP (HL7v3) and RAV (AZ-IG FHIR message) ingestion, capacity feed
updates. Prints throughput, p50/p95/p99 per operation, unexpected responses, RSS of every instance over time
(growth after warm-up) and database growth per 1,000 ingestions.

Subscriptions: before the load, capacity Subscriptions on the soak's Slots are created — two rest-hooks (every
change; free Slots only) POSTing to an HTTP receiver in this process on loopback, and one websocket
Subscription with a client bound on every instance. After the load (and once the outbox is empty) the
deliveries are checked against the Slot versions the load wrote (read back from the database): every matching
change exactly once per rest-hook Subscription (missing, duplicate or unrequested entries are unexpected), at
least once per websocket client (a websocket notification carries the current state, so a later version
covers an earlier one), with the latency from the write (`meta.lastUpdated`) to the receipt.

    .venv/bin/python bench/soak.py --duration 600          # the full 10-minute soak (3 instances)
    .venv/bin/python bench/soak.py --duration 60 --clients 4   # a smoke run

Expected statuses per operation are listed in OPERATIONS; anything else counts as an error (target: 0).
"""

from __future__ import annotations

import argparse
import bisect
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.capacity.websocket import PATH as WEBSOCKET_PATH  # noqa: E402
from tests.auth.fixtures import GatewayTokenAuth, obtain_auth_header  # noqa: E402
from tests.ingest.messages import episode_message  # noqa: E402
from tests.pg import fresh_database, start_temporary_postgres  # noqa: E402
from tests.reference import REFERENCE_DIR  # noqa: E402
from tests.reliability.live import GatewayProcess, gateway_cluster, start_all  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
RAV_SAMPLE = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
RAV_IDS = ("hg-ReferralBundle-AmbulanceHAP-referral", "hg-ReferralMessageHeader-AmbulanceHAP-referral")
WARM_UP_FRACTION = 0.2
SOAK_CATEGORY = "zh-seh"  # the category of every unit the capacity feed operation reports on
REST_HOOKS = {"rest-hook all": f"Slot?service-type={SOAK_CATEGORY}",
              "rest-hook free": f"Slot?service-type={SOAK_CATEGORY}&status=free"}
WEBSOCKET_CRITERIA = f"Slot?service-type={SOAK_CATEGORY}"
DRAIN_TIMEOUT = 120.0
QUIET = 3.0


@dataclass
class Figures:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    ingestions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.latencies[operation].append(seconds)
            if problem:
                self.errors[operation].append(problem)
            if operation.startswith("ingest") and not problem:
                self.ingestions += 1


class Workload:
    """The operations, each a function (http client, instance) -> (response, expected statuses)."""

    def __init__(self, gateways: list[GatewayProcess]) -> None:
        self.gateways = gateways
        self.patient_ids: list[str] = []
        self.rav_template = RAV_SAMPLE.read_text() if RAV_SAMPLE.exists() else None

    def operations(self) -> dict[str, tuple[int, Callable[[httpx.Client, GatewayProcess], httpx.Response],
                                            set[int]]]:
        table = {
            "read": (30, self.read, {200}),
            "search": (20, self.search, {200}),
            "summary": (5, self.summary, {200}),
            "create": (10, self.create, {201}),
            "ingest-hap": (10, self.ingest_hap, {201}),
            "capacity-feed": (5, self.capacity_feed, {200, 201}),
        }
        if self.rav_template:
            table["ingest-rav"] = (5, self.ingest_rav, {201})
        return table

    def read(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        return http.get(f"{gateway.base}/Patient/{random.choice(self.patient_ids)}")

    def search(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        return http.get(f"{gateway.base}/Patient", params={"family": "Soak", "_count": "20"})

    def summary(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        return http.get(f"{gateway.base}/Patient/{random.choice(self.patient_ids)}/$summary")

    def create(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        body = {"resourceType": "Patient", "name": [{"family": "Soak", "given": [uuid.uuid4().hex[:8]]}],
                "gender": random.choice(["male", "female"])}
        response = http.post(f"{gateway.base}/Patient", json=body)
        if response.status_code == 201:
            self.patient_ids.append(response.json()["id"])
        return response

    def ingest_hap(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        message_id = uuid.uuid4().hex
        raw = episode_message(message_id=message_id, episode_id=f"ep-{message_id}")
        return http.post(f"{gateway.origin}/ingest/hap", content=raw, headers={"Content-Type": "application/xml"})

    def ingest_rav(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        assert self.rav_template is not None
        raw = self.rav_template
        for original in RAV_IDS:
            raw = raw.replace(original, f"{original[:20]}-{uuid.uuid4().hex[:12]}")
        return http.post(f"{gateway.origin}/ingest/rav", content=raw.encode(),
                         headers={"Content-Type": "application/fhir+json"})

    def capacity_feed(self, http: httpx.Client, gateway: GatewayProcess) -> httpx.Response:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        total = random.randint(4, 12)
        csv = (f"ura,location,category,total,free,timestamp\n11111113,SEH-{random.randint(1, 5)},zh-seh,"
               f"{total},{random.randint(0, total)},{now}\n")
        return http.post(f"{gateway.origin}/ingest/capacity", content=csv.encode(),
                         headers={"Content-Type": "text/csv"})


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def _entries(bundle: dict[str, Any]) -> list[tuple[str, int, float]]:
    """(Slot id, version, written at) of each entry of a notification."""
    found = []
    for entry in bundle.get("entry", []):
        meta = entry["resource"].get("meta", {})
        found.append((entry["resource"]["id"], int(meta["versionId"]), _epoch(meta["lastUpdated"])))
    return found


class HookReceiver:
    """The rest-hook endpoint: a real HTTP server on loopback in this process; remembers what arrived when."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, list[tuple[str, int, float]]]] = []  # (at, subscription, entries)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.time()
                self.send_response(204)
                self.end_headers()
                bundle = json.loads(body) if body else {}
                tags = bundle.get("meta", {}).get("tag", [])
                with receiver.lock:
                    receiver.received.append((at, tags[0]["code"] if tags else "", _entries(bundle)))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last_arrival(self) -> float:
        with self.lock:
            return self.received[-1][0] if self.received else 0.0


class WebSocketClient(threading.Thread):
    """A websocket client bound to one Subscription on one instance; remembers every entry and its receipt."""

    def __init__(self, gateway: GatewayProcess, authorization: str, subscription: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.gateway, self.authorization, self.subscription, self.stop = gateway, authorization, subscription, stop
        self.received: list[tuple[float, list[tuple[str, int, float]]]] = []
        self.problem: str | None = None
        self.last = 0.0
        self.bound = threading.Event()

    def bind(self) -> None:
        """Connect and bind (in the thread, which keeps the connection); raises when that fails."""
        self.start()
        if not self.bound.wait(60) or self.problem:
            raise RuntimeError(f"websocket on port {self.gateway.port}: {self.problem or 'no answer to bind'}")

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(f"ws://127.0.0.1:{self.gateway.port}{WEBSOCKET_PATH}", open_timeout=30, max_size=2**24,
                         additional_headers={"Authorization": self.authorization}) as socket:
                socket.send(f"bind {self.subscription}")
                reply = socket.recv(timeout=30)
                if reply != f"bound {self.subscription}":
                    raise RuntimeError(f"bind answered {reply!r}")
                self.bound.set()
                self._receive(socket)
        except Exception as error:  # noqa: BLE001 - reported as an unexpected outcome, not a crash of the soak
            self.problem = f"{type(error).__name__}: {error}"
            self.bound.set()

    def _receive(self, socket: Any) -> None:
        while not self.stop.is_set():
            try:
                message = socket.recv(timeout=0.5)
            except TimeoutError:
                continue
            at = time.time()
            if isinstance(message, str) and message.startswith("ping "):
                continue
            self.received.append((at, _entries(json.loads(message))))
            self.last = at


class SubscriptionTraffic:
    """The soak's Subscriptions, their receivers, and the accounting of what was delivered."""

    def __init__(self, gateways: list[GatewayProcess], database_url: str, http: httpx.Client) -> None:
        self.gateways = gateways
        self.receiver = HookReceiver()
        self.stop = threading.Event()
        self.hooks: dict[str, str] = {}  # name -> Subscription id
        for n, (name, criteria) in enumerate(REST_HOOKS.items()):
            self.hooks[name] = self._create(http, gateways[n % len(gateways)], criteria, {
                "type": "rest-hook", "endpoint": self.receiver.url, "payload": "application/fhir+json"})
        self.websocket = self._create(http, gateways[-1], WEBSOCKET_CRITERIA,
                                      {"type": "websocket", "payload": "application/fhir+json"})
        authorization = obtain_auth_header(gateways[0].origin, database_url)["Authorization"]
        self.clients = [WebSocketClient(gateway, authorization, self.websocket, self.stop) for gateway in gateways]

    @staticmethod
    def _create(http: httpx.Client, gateway: GatewayProcess, criteria: str, channel: dict[str, str]) -> str:
        response = http.post(f"{gateway.base}/Subscription", json={
            "resourceType": "Subscription", "status": "requested", "reason": "soak", "criteria": criteria,
            "channel": channel})
        response.raise_for_status()
        return str(response.json()["id"])

    def start(self) -> None:
        for client in self.clients:
            client.bind()

    def finish(self, measuring: Connection) -> float:
        """After the load: wait until the outbox is empty and the receivers are quiet; seconds waited."""
        started = time.monotonic()
        deadline = started + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            pending = measuring.execute(text("SELECT count(*) FROM capacity_outbox WHERE state = 'pending'"))
            quiet_since = max([self.receiver.last_arrival(), *(client.last for client in self.clients)])
            if pending.scalar_one() == 0 and time.time() - quiet_since > QUIET:
                break
            time.sleep(0.5)
        self.stop.set()
        for client in self.clients:
            client.join(timeout=10)
        self.receiver.server.shutdown()
        return time.monotonic() - started

    def account(self, measuring: Connection, since_vkey: int) -> dict[str, Any]:
        """Expected (from the Slot versions written since `since_vkey`) against delivered, per receiver."""
        written: list[tuple[str, int, float, str]] = []  # (id, version, written at, status)
        for row in measuring.execute(text(
                "SELECT id, version, last_updated, body FROM resource_version "
                "WHERE type = 'Slot' AND vkey > :since AND NOT deleted AND body IS NOT NULL"), {"since": since_vkey}):
            body = json.loads(bytes(row.body))
            codes = {c.get("code") for concept in body.get("serviceType", []) for c in concept.get("coding", [])}
            if SOAK_CATEGORY in codes:
                written.append((row.id, row.version, _epoch(body["meta"]["lastUpdated"]), body.get("status", "")))
        result: dict[str, Any] = {}
        for name, subscription in self.hooks.items():
            expected = {(i, v): at for i, v, at, status in written if name != "rest-hook free" or status == "free"}
            result[name] = self._exactly_once(subscription, expected)
        for n, client in enumerate(self.clients):
            result[f"websocket @{n}"] = self._at_least_once(client, {(i, v): at for i, v, at, _ in written})
        return result

    def _exactly_once(self, subscription: str, expected: dict[tuple[str, int], float]) -> dict[str, Any]:
        counts: dict[tuple[str, int], int] = defaultdict(int)
        latencies = []
        for at, tag, entries in self.receiver.received:
            if tag != subscription:
                continue
            for resource_id, version, written_at in entries:
                counts[(resource_id, version)] += 1
                if counts[(resource_id, version)] == 1:
                    latencies.append(at - written_at)
        missing = sum(1 for key in expected if key not in counts)
        duplicates = sum(count - 1 for count in counts.values() if count > 1)
        extra = sum(1 for key in counts if key not in expected)
        return {"semantics": "exactly once", "expected": len(expected), "delivered": len(counts),
                "missing": missing, "duplicates": duplicates, "unrequested": extra,
                "unexpected": missing + duplicates + extra, **_latency(latencies)}

    @staticmethod
    def _at_least_once(client: WebSocketClient, expected: dict[tuple[str, int], float]) -> dict[str, Any]:
        """A change (id, v) is delivered when the client received (id, v') with v' >= v; latency to the first."""
        arrivals: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
        for at, entries in sorted(client.received):
            for resource_id, version, _ in entries:
                times, highest = arrivals[resource_id]
                times.append(at)
                highest.append(max(version, highest[-1] if highest else 0))
        latencies, missing = [], 0
        for (resource_id, version), written_at in expected.items():
            times, highest = arrivals.get(resource_id, ([], []))
            index = bisect.bisect_left(highest, version)
            if index == len(highest):
                missing += 1
            else:
                latencies.append(times[index] - written_at)
        messages = len(client.received)
        result = {"semantics": "at least once", "expected": len(expected), "delivered": len(expected) - missing,
                  "missing": missing, "messages": messages, "unexpected": missing + (1 if client.problem else 0),
                  **_latency(latencies)}
        if client.problem:
            result["problem"] = client.problem
        return result


def _latency(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0}
    return {"p50_ms": statistics.median(values) * 1000, "p95_ms": percentile(values, 0.95) * 1000}


def client_loop(workload: Workload, figures: Figures, auth: httpx.Auth, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    operations = workload.operations()
    names = list(operations)
    weights = [operations[name][0] for name in names]
    with httpx.Client(auth=auth, headers=FHIR_JSON, timeout=60) as http:
        turn = seed
        while not stop.is_set():
            name = rng.choices(names, weights)[0]
            _, call, expected = operations[name]
            gateway = workload.gateways[turn % len(workload.gateways)]
            turn += 1
            started = time.perf_counter()
            try:
                response = call(http, gateway)
                problem = None if response.status_code in expected else f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            figures.record(name, time.perf_counter() - started, problem)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def database_bytes(connection: Connection) -> int:
    """On a connection opened before the load: the instances may hold every other connection slot by the end."""
    return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--clients", type=int, default=6, help="client threads")
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a throw-away cluster)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-subscriptions", action="store_true", help="leave Subscription traffic out")
    args = parser.parse_args()

    server = None
    if args.database_url:
        database_url = args.database_url
    else:
        server = start_temporary_postgres()
        database_url = fresh_database(server.url, "soak")
    measuring = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT").connect()
    workdir = Path(tempfile.mkdtemp(prefix="zcc-soak-"))
    gateways = gateway_cluster(args.instances, database_url, workdir)
    try:
        start_all(gateways)
        auth = GatewayTokenAuth(gateways[0].origin, database_url)
        workload = Workload(gateways)
        subscriptions = None
        with httpx.Client(auth=auth, headers=FHIR_JSON, timeout=60) as http:
            for _ in range(20):
                workload.create(http, gateways[0])
            if not args.no_subscriptions:
                subscriptions = SubscriptionTraffic(gateways, database_url, http)
        since_vkey = int(measuring.execute(text("SELECT coalesce(max(vkey), 0) FROM resource_version")).scalar_one())
        if subscriptions is not None:
            subscriptions.start()
        size_before = database_bytes(measuring)
        figures, stop = Figures(), threading.Event()
        threads = [threading.Thread(target=client_loop, args=(workload, figures, auth, stop, n), daemon=True)
                   for n in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        rss: list[tuple[float, list[int]]] = []
        while time.monotonic() - started < args.duration:
            time.sleep(min(10.0, args.duration / 10))
            rss.append((time.monotonic() - started, [gateway.rss_kib() for gateway in gateways]))
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - started
        size_after = database_bytes(measuring)
        deliveries, drained = None, 0.0
        if subscriptions is not None:
            drained = subscriptions.finish(measuring)
            deliveries = subscriptions.account(measuring, since_vkey)
        report(args, figures, rss, elapsed, size_before, size_after, deliveries, drained)
    finally:
        measuring.close()
        for gateway in gateways:
            gateway.stop()
        if server is not None:
            server.stop()


def report(args: argparse.Namespace, figures: Figures, rss: list[tuple[float, list[int]]], elapsed: float,
           size_before: int, size_after: int, deliveries: dict[str, Any] | None = None, drained: float = 0.0) -> None:
    total = sum(len(v) for v in figures.latencies.values())
    errors = sum(len(v) for v in figures.errors.values())
    print(f"soak: {args.instances} instances + PostgreSQL, {args.clients} client threads, {elapsed:.0f} s")
    print(f"throughput {total / elapsed:.1f} req/s ({total} requests), unexpected responses: {errors}")
    print(f"{'operation':<15}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'errors':>8}")
    summary: dict[str, dict[str, float]] = {}
    for name, values in sorted(figures.latencies.items()):
        row = {"count": len(values), "p50": statistics.median(values) * 1000,
               "p95": percentile(values, 0.95) * 1000, "p99": percentile(values, 0.99) * 1000,
               "errors": len(figures.errors.get(name, []))}
        summary[name] = row
        print(f"{name:<15}{row['count']:>8}{row['p50']:>10.1f}{row['p95']:>10.1f}{row['p99']:>10.1f}"
              f"{row['errors']:>8}")
    for name, problems in figures.errors.items():
        print(f"  first {name} error: {problems[0]}")
    warm = [sample for sample in rss if sample[0] >= args.duration * WARM_UP_FRACTION] or rss
    pairs = zip(warm[0][1], warm[-1][1], strict=True)
    growth = [(last - first) / first * 100 if first else 0.0 for first, last in pairs]
    print("RSS MiB per instance over time: " + "; ".join(
        f"{at:.0f}s " + "/".join(f"{kib / 1024:.0f}" for kib in values) for at, values in rss))
    print("RSS growth after warm-up: " + ", ".join(f"{g:+.1f}%" for g in growth) + " (target < 10%)")
    per_thousand = (size_after - size_before) / figures.ingestions * 1000 if figures.ingestions else 0.0
    print(f"database growth: {(size_after - size_before) / 2**20:.1f} MiB for {figures.ingestions} ingestions "
          f"= {per_thousand / 2**20:.1f} MiB per 1,000 ingestions (all other writes included)")
    unexpected_deliveries = 0
    if deliveries is not None:
        unexpected_deliveries = sum(row["unexpected"] for row in deliveries.values())
        print(f"subscription notifications (outbox empty and receivers quiet {drained:.1f} s after the load): "
              f"unexpected deliveries: {unexpected_deliveries}")
        print(f"{'receiver':<17}{'semantics':<15}{'expected':>9}{'delivered':>10}{'missing':>8}{'dupl.':>7}"
              f"{'p50 ms':>9}{'p95 ms':>9}")
        for name, row in deliveries.items():
            print(f"{name:<17}{row['semantics']:<15}{row['expected']:>9}{row['delivered']:>10}{row['missing']:>8}"
                  f"{row.get('duplicates', 0) + row.get('unrequested', 0):>7}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
                  + (f"  {row['problem']}" if row.get("problem") else ""))
    if args.json:
        args.json.write_text(json.dumps({"operations": summary, "errors": errors, "rss": rss, "rss_growth": growth,
                                         "db_bytes_per_1000_ingestions": per_thousand,
                                         "subscriptions": deliveries, "unexpected_deliveries": unexpected_deliveries},
                                        indent=2))


if __name__ == "__main__":
    main()
