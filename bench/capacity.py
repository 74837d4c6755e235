"""Capacity benchmark (not a test). Loads R regions x P providers x C categories with S Slots each straight
into the store (bulk, one transaction per region; the same resources the feed writes), then measures through
the HTTP app (in-process ASGI, insecure-dev auth so no token round trips):

- `Slot?status=free&service-type=...&start=ge...` and `$find-capacity` (category, region, near): p50/p95
  latency and sequential req/s;
- the bed-status feed: rows/s for one POST of N rows (each row one transaction through the pipeline with
  audit on);
- notification latency: feed write -> `ping` on a bound websocket Subscription, p50/p95.

    .venv/bin/python bench/capacity.py [--regions 11] [--providers 10] [--categories 12] [--slots 8] [--pg]

The issue's full size is --providers 300 --slots 23 (about 1M Slots); that takes far longer than a minute to
load on this box. Prints a Markdown table for docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["ZCC_INSECURE_DEV"] = "1"  # the benchmark measures capacity, not token verification

from starlette.testclient import TestClient  # noqa: E402

from gateway.app import build_services, create_app  # noqa: E402
from gateway.capacity import model  # noqa: E402
from gateway.capacity.demo import REGION_CENTRES  # noqa: E402
from gateway.capacity.urls import CATEGORY_SYSTEM  # noqa: E402
from gateway.capacity.websocket import PATH as WEBSOCKET_PATH  # noqa: E402
from gateway.settings import Settings  # noqa: E402


def bulk_load(services, terms, regions: int, providers: int, categories: int, slots: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """Organization, Location (with position), HealthcareService, Schedule and Slots per unit."""
    started = time.perf_counter()
    written = 0
    now = datetime.now(UTC) - timedelta(minutes=5)
    stamp = model.instant(now)
    codes = sorted(terms.categories)[:categories]
    for r_index, region_code in enumerate(sorted(terms.regions)[:regions]):
        region = terms.regions[region_code]
        lat, lon, city = REGION_CENTRES[region_code]
        with services.store.write() as connection:
            for p_index in range(providers):
                ura = f"{70_000_000 + r_index * 10_000 + p_index:08d}"
                position = (Decimal(f"{lat + (p_index % 10) * 0.01:.4f}"),
                            Decimal(f"{lon + (p_index // 10) * 0.01:.4f}"))
                for code in codes:
                    key, category = model.UnitKey(ura, f"L{p_index}-{code}", code), terms.categories[code]
                    location = model.location(key, f"{city} {p_index}", region, city, "1234 AB", (0.0, 0.0))
                    location["position"] = {"latitude": position[0], "longitude": position[1]}
                    resources = [model.organization(key, f"Aanbieder {ura}", region=region), location,
                                 model.healthcare_service(key, category, region),
                                 model.schedule(key, category, region, stamp)]
                    resources += [model.slot(key, i, category, model.FREE if i % 3 == 0 else model.BUSY, stamp)
                                  for i in range(slots)]
                    for resource in resources:
                        services.store.save(connection, resource, resource["id"])
                    written += len(resources)
    return written, time.perf_counter() - started


def timed(client: TestClient, url: str, count: int) -> tuple[float, float, float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
    durations.sort()
    p95 = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
    return statistics.median(durations) * 1000, p95 * 1000, count / sum(durations)


def feed_rate(client: TestClient, terms, rows: int) -> float:  # type: ignore[no-untyped-def]
    stamp = model.instant(datetime.now(UTC))
    body = [{"ura": f"{80_000_000 + i:08d}", "location": "FEED", "category": "zh-ic", "total": 6, "free": i % 6,
             "timestamp": stamp, "region": "oost"} for i in range(rows)]
    started = time.perf_counter()
    response = client.post("/ingest/capacity", json=body)
    elapsed = time.perf_counter() - started
    assert response.json()["applied"] == rows, response.text[:300]
    return rows / elapsed


def notification_latency(client: TestClient, count: int) -> tuple[float, float]:
    created = client.post("/fhir/Subscription", json={
        "resourceType": "Subscription", "status": "requested", "reason": "bench",
        "criteria": "Slot?service-type=zh-ic&schedule.region=west", "channel": {"type": "websocket"}},
        headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    subscription = created.json()["id"]
    latencies = []
    with client.websocket_connect(WEBSOCKET_PATH) as socket:
        socket.send_text(f"bind {subscription}")
        assert socket.receive_text() == f"bound {subscription}"
        base = datetime.now(UTC)
        for i in range(count):
            stamp = model.instant(base + timedelta(seconds=i + 1))
            row = {"ura": "90000001", "location": "NOTIFY", "category": "zh-ic", "total": 4, "free": i % 4,
                   "timestamp": stamp, "region": "west"}
            started = time.perf_counter()
            client.post("/ingest/capacity", json=[row])
            assert socket.receive_text() == f"ping {subscription}"
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    return statistics.median(latencies) * 1000, latencies[min(count - 1, int(count * 0.95))] * 1000


def run(name: str, url: str, args: argparse.Namespace) -> None:
    services = build_services(Settings(database_url=url, base_url="http://testserver/fhir"))
    app = create_app(services=services)
    terms = services.capacity.terms
    written, seconds = bulk_load(services, terms, args.regions, args.providers, args.categories, args.slots)
    slot_count = args.regions * args.providers * args.categories * args.slots
    print(f"| {name}: bulk load, {slot_count:,} Slots ({written:,} resources) | {written / seconds:,.0f} "
          f"resources/s ({seconds:.0f} s) |")
    start = model.instant(datetime.now(UTC) - timedelta(hours=1))
    code = sorted(terms.categories)[0]
    searches = {
        f"Slot?status=free&service-type={code}&start=ge...": f"/fhir/Slot?status=free&service-type={CATEGORY_SYSTEM}|"
        f"{code}&start=ge{start.replace('+', '%2B')}&_count=50",
        "$find-capacity category+region+near": f"/fhir/Slot/$find-capacity?category={code}&region=oost"
        "&near=51.84|5.86|50|km",
    }
    with TestClient(app) as client:
        for label, url_path in searches.items():
            p50, p95, rate = timed(client, url_path, args.requests)
            print(f"| {name}: {label} ({args.requests} sequential) | p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"{rate:.0f} req/s |")
        print(f"| {name}: bed-status feed, {args.rows} rows in one POST | {feed_rate(client, terms, args.rows):.1f} "
              "rows/s |")
        p50, p95 = notification_latency(client, args.notifications)
        print(f"| {name}: notification latency, feed write -> websocket ping ({args.notifications}x) | "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms |")
    services.capacity.hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, default=11)
    parser.add_argument("--providers", type=int, default=10, help="providers per region")
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--slots", type=int, default=8, help="Slots per provider and category")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--notifications", type=int, default=20)
    parser.add_argument("--pg", action="store_true", help="also against a throw-away PostgreSQL")
    args = parser.parse_args()
    print(json.dumps({k: v for k, v in vars(args).items()}))
    print("| measurement | result |\n|---|---|")
    run("SQLite", f"sqlite:///{tempfile.mkdtemp()}/capacity.db", args)
    if args.pg:
        from tests.pg import fresh_database, start_temporary_postgres

        server = start_temporary_postgres()
        try:
            run("PostgreSQL", fresh_database(server.url, "capacity"), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
