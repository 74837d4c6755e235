"""Sustained mixed load against N gateway instances + one PostgreSQL server, from this (separate) process.

Starts a throw-away PostgreSQL cluster (or uses --database-url), N `zcc-gateway serve` processes sharing it
(as behind a load balancer), and client threads that spread requests round-robin over the instances:
reads, searches, `$summary`, creates, HAP (HL7v3) and RAV (AZ-IG FHIR message) ingestion, capacity feed
updates. Prints throughput, p50/p95/p99 per operation, unexpected responses, RSS of every instance over time
(growth after warm-up) and database growth per 1,000 ingestions.

    .venv/bin/python bench/soak.py --duration 600          # the full 10-minute soak (3 instances)
    .venv/bin/python bench/soak.py --duration 60 --clients 4   # a smoke run

Expected statuses per operation are listed in OPERATIONS; anything else counts as an error (target: 0).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

import httpx
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.auth.fixtures import GatewayTokenAuth  # noqa: E402
from tests.ingest.messages import episode_message  # noqa: E402
from tests.pg import fresh_database, start_temporary_postgres  # noqa: E402
from tests.reference import REFERENCE_DIR  # noqa: E402
from tests.reliability.live import GatewayProcess, gateway_cluster, start_all  # noqa: E402

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
RAV_SAMPLE = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
RAV_IDS = ("hg-ReferralBundle-AmbulanceHAP-referral", "hg-ReferralMessageHeader-AmbulanceHAP-referral")
WARM_UP_FRACTION = 0.2


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
        with httpx.Client(auth=auth, headers=FHIR_JSON, timeout=60) as http:
            for _ in range(20):
                workload.create(http, gateways[0])
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
        report(args, figures, rss, elapsed, size_before, size_after)
    finally:
        measuring.close()
        for gateway in gateways:
            gateway.stop()
        if server is not None:
            server.stop()


def report(args: argparse.Namespace, figures: Figures, rss: list[tuple[float, list[int]]], elapsed: float,
           size_before: int, size_after: int) -> None:
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
    if args.json:
        args.json.write_text(json.dumps({"operations": summary, "errors": errors, "rss": rss, "rss_growth": growth,
                                         "db_bytes_per_1000_ingestions": per_thousand}, indent=2))


if __name__ == "__main__":
    main()
