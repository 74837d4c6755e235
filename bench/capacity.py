"""Capacity benchmark (not a test). Loads R regions x P providers x C categories with S Slots each straight
into the store (bulk, one transaction per region; the same resources the feed writes), then measures through
the HTTP app (in-process ASGI, insecure-dev auth so no token round trips):

- `Slot?status=free&service-type=...&start=ge...` and `$find-capacity` (category, region, near): p50/p95
  latency and sequential req/s;
- the bed-status feed: rows/s for one POST of N rows (each row one transaction through the pipeline with
  audit on);
- notification latency: feed write -> `ping` on a bound websocket Subscription, p50/p95.

    .venv/bin/python bench/capacity.py [--regions 11] [--providers 10] [--categories 12] [--slots 8] [--pg]
    .venv/bin/python bench/capacity.py --providers 300 --slots 26 --backend pg   # the issue's 1M Slots

Loading: on PostgreSQL the rows the store would write (resource, resource_version and the search index rows
from the store's own indexer) are built in Python and streamed with COPY, one region at a time — the same
bytes and index rows `ResourceStore.save` writes, ~50x faster than one audited-free save per resource. On
SQLite the resources go through `ResourceStore.save` (one transaction per region). Prints a Markdown table
for docs/benchmarks.md."""

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

from conformance import fhirjson  # noqa: E402
from gateway.app import build_services, create_app  # noqa: E402
from gateway.capacity import model  # noqa: E402
from gateway.capacity.demo import REGION_CENTRES  # noqa: E402
from gateway.capacity.urls import CATEGORY_SYSTEM  # noqa: E402
from gateway.capacity.websocket import PATH as WEBSOCKET_PATH  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store.repository import now_instant  # noqa: E402
from gateway.store.schema import INDEX_TABLES  # noqa: E402


def region_resources(terms, r_index: int, region_code: str, providers: int, codes: list[str], slots: int,  # type: ignore[no-untyped-def]
                     stamp: str):
    """Organization, Location (with position), HealthcareService, Schedule and Slots per unit of one region."""
    region = terms.regions[region_code]
    lat, lon, city = REGION_CENTRES[region_code]
    for p_index in range(providers):
        ura = f"{70_000_000 + r_index * 10_000 + p_index:08d}"
        position = (Decimal(f"{lat + (p_index % 10) * 0.01:.4f}"), Decimal(f"{lon + (p_index // 10) * 0.01:.4f}"))
        for code in codes:
            key, category = model.UnitKey(ura, f"L{p_index}-{code}", code), terms.categories[code]
            location = model.location(key, f"{city} {p_index}", region, city, "1234 AB", (0.0, 0.0))
            location["position"] = {"latitude": position[0], "longitude": position[1]}
            yield key, category, [model.organization(key, f"Aanbieder {ura}", region=region), location,
                                  model.healthcare_service(key, category, region),
                                  model.schedule(key, category, region, stamp)]


def slot_status(index: int) -> str:
    return model.FREE if index % 3 == 0 else model.BUSY


def bulk_load(services, terms, regions: int, providers: int, categories: int, slots: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    if services.store.engine.dialect.name == "postgresql":
        return copy_load(services, terms, regions, providers, categories, slots)
    started = time.perf_counter()
    written = 0
    stamp = model.instant(datetime.now(UTC) - timedelta(minutes=5))
    codes = sorted(terms.categories)[:categories]
    for r_index, region_code in enumerate(sorted(terms.regions)[:regions]):
        with services.store.write() as connection:
            for key, category, resources in region_resources(terms, r_index, region_code, providers, codes, slots,
                                                             stamp):
                resources += [model.slot(key, i, category, slot_status(i), stamp) for i in range(slots)]
                for resource in resources:
                    services.store.save(connection, resource, resource["id"])
                written += len(resources)
    return written, time.perf_counter() - started


def copy_load(services, terms, regions: int, providers: int, categories: int, slots: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """PostgreSQL: build the stored rows (body bytes as the store serialises them, index rows from the
    store's indexer) and COPY them, one transaction per region. A unit's Slots differ only in id and status,
    so the body and index rows are built once per (unit, status) and the id substituted."""
    started = time.perf_counter()
    written = 0
    stamp = model.instant(datetime.now(UTC) - timedelta(minutes=5))
    last_updated = now_instant()
    codes = sorted(terms.categories)[:categories]
    indexer = services.store.indexer
    columns = {kind: [c.name for c in table.columns] for kind, table in INDEX_TABLES.items()}
    raw = services.store.engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(res_key), 0) FROM resource")
            next_key = cursor.fetchone()[0] + 1
        seen: set[tuple[str, str]] = set()
        def stamped(body: dict) -> dict:
            body["meta"] = {"versionId": "1", "lastUpdated": last_updated, **body.get("meta", {})}
            return body

        for r_index, region_code in enumerate(sorted(terms.regions)[:regions]):
            resource_rows: list[tuple] = []
            index_rows: dict[str, list[tuple]] = {kind: [] for kind in INDEX_TABLES}

            def add(body: dict, index: dict, resource_rows=resource_rows, index_rows=index_rows) -> None:
                nonlocal next_key
                resource_rows.append((next_key, body["resourceType"], body["id"], fhirjson_bytes(body)))
                for kind, rows in index.items():
                    names = columns[kind][2:]
                    index_rows[kind].extend([(next_key, row["param"], *(row.get(n) for n in names)) for row in rows])
                next_key += 1

            for key, category, resources in region_resources(terms, r_index, region_code, providers, codes, slots,
                                                             stamp):
                for body in resources:
                    if (body["resourceType"], body["id"]) in seen:  # one Organization per provider
                        continue
                    seen.add((body["resourceType"], body["id"]))
                    body = stamped(body)
                    add(body, indexer(body))
                templates = {}
                for status in (model.FREE, model.BUSY):
                    body = stamped(model.slot(key, 0, category, status, stamp))
                    templates[status] = (body, indexer(body))
                for i in range(slots):
                    template, index = templates[slot_status(i)]
                    add({**template, "id": key.slot_id(i)}, index)
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy("COPY resource (res_key, type, id, version, last_updated, deleted, body) "
                                 "FROM STDIN") as copy:
                    for res_key, resource_type, resource_id, body in resource_rows:
                        copy.write_row((res_key, resource_type, resource_id, 1, last_updated, False, body))
                with cursor.copy("COPY resource_version (res_key, type, id, version, last_updated, method, deleted, "
                                 "body) FROM STDIN") as copy:
                    for res_key, resource_type, resource_id, body in resource_rows:
                        copy.write_row((res_key, resource_type, resource_id, 1, last_updated, "PUT", False, body))
                for kind, rows in index_rows.items():
                    if rows:
                        with cursor.copy(f"COPY {INDEX_TABLES[kind].name} ({', '.join(columns[kind])}) "
                                         "FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
            written += len(resource_rows)
            print(f"  loaded region {region_code}: {written:,} resources, {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('resource', 'res_key'), %s)", (next_key,))
        connection.commit()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        connection.autocommit = False
    finally:
        raw.close()
    return written, time.perf_counter() - started


def fhirjson_bytes(body: dict) -> bytes:
    """The bytes `ResourceStore.save` stores: resourceType, id, meta first."""
    ordered = {"resourceType": body["resourceType"], "id": body["id"], "meta": body["meta"],
               **{k: v for k, v in body.items() if k not in {"resourceType", "id", "meta"}}}
    return fhirjson.dumps(ordered)


def timed(client: TestClient, url: str, count: int) -> tuple[float, float, float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
        assert len(durations) > 1 or response.json().get("entry"), f"nothing found: {url}"
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
    if args.database:
        with services.store.read() as connection:
            slot_count = services.store.count(connection, "Slot")
        print(f"| {name}: existing database, {slot_count:,} Slots | (not loaded by this run) |")
    else:
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
            count = args.search_requests if label.startswith("Slot?") else args.requests
            if not count:
                print(f"| {name}: {label} | not measured (--search-requests 0) |")
                continue
            p50, p95, rate = timed(client, url_path, count)
            print(f"| {name}: {label} ({count} sequential) | p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"{rate:.1f} req/s |", flush=True)
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
    parser.add_argument("--database", help="measure an already loaded database (URL) instead of loading one")
    parser.add_argument("--search-requests", type=int, default=None, help="requests for the Slot search "
                        "(default: --requests)")
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default=None,
                        help="which database(s); default sqlite, or both with --pg")
    args = parser.parse_args()
    backend = args.backend or ("both" if args.pg else "sqlite")
    args.search_requests = args.requests if args.search_requests is None else args.search_requests
    print(json.dumps({k: v for k, v in vars(args).items()}))
    print("| measurement | result |\n|---|---|")
    if args.database:
        run("PostgreSQL" if "postgres" in args.database else "SQLite", args.database, args)
        return
    if backend in {"sqlite", "both"}:
        run("SQLite", f"sqlite:///{tempfile.mkdtemp()}/capacity.db", args)
    if backend in {"pg", "both"}:
        from tests.pg import fresh_database, start_temporary_postgres

        server = start_temporary_postgres()
        try:
            run("PostgreSQL", fresh_database(server.url, "capacity"), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
