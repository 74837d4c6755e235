"""Capacity benchmark (not a test). Loads R regions x P providers x C categories with S Slots each straight
into the store (in bulk; the same resources the feed writes), then measures through
the HTTP app (in-process ASGI, insecure-dev auth so no token round trips):

- `Slot?status=free&service-type=...&start=ge...` and `$find-capacity` (category, region, near): p50/p95
  latency and sequential req/s;
- the bed-status feed: rows/s for one POST of N rows (each row one transaction through the pipeline with
  audit on);
- notification latency: feed write -> `ping` on a bound websocket Subscription, p50/p95.

    .venv/bin/python bench/capacity.py [--regions 11] [--providers 10] [--categories 12] [--slots 8] [--pg]
    .venv/bin/python bench/capacity.py --providers 300 --slots 26 --backend pg   # the issue's 1M Slots

Load once, measure many times: `--cluster DIR` keeps the PostgreSQL cluster (created and loaded by the first run,
restarted and measured by later ones, stopped at the end unless --keep-running); `--database URL` measures a
running database. `--server` measures throughput with concurrency instead: `zcc-gateway serve --workers 2` on the
loaded database under wrk, the issue's search round-robin over the 12 categories, a real access token (or
--auth insecure-dev), CPU per search of gateway, PostgreSQL and wrk (`--profile FILE`: one worker under cProfile):

    .venv/bin/python bench/capacity.py --providers 300 --slots 26 --backend pg --cluster /var/tmp/zcc-capacity-1m
    .venv/bin/python bench/capacity.py --cluster /var/tmp/zcc-capacity-1m --server [--connections 8] [--same-start]

Loading: on PostgreSQL the rows the store would write (resource, resource_version and the search index rows
from the store's own indexer) are COPYed for the few resources per unit and generated server-side for the
Slots (one body template and index-row template per unit and status, expanded with generate_series), with the
secondary indexes and constraints rebuilt after the load; a random sample is then re-derived in Python and
compared byte for byte (1M Slots: ~4 min instead of ~35). On SQLite the resources go through
`ResourceStore.save` (one transaction per region). Reports CPU per request (this process = client + app; and
the PostgreSQL backends when the server runs on this host). Prints a Markdown table for docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_INSECURE_DEV = os.environ.get("ZCC_INSECURE_DEV")  # as the caller set it (server mode passes it on)
os.environ["ZCC_INSECURE_DEV"] = "1"  # the in-process benchmark measures capacity, not token verification

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
    """PostgreSQL: write exactly the rows `ResourceStore.save` would (resource, resource_version, and the index
    rows of the store's own indexer), fast:

    - Organization/Location/HealthcareService/Schedule (~4 per unit) are built in Python and COPYed;
    - a unit's Slots differ only in id (and status), so per unit and status one body template (id replaced by a
      marker) and its index rows (from the indexer; checked to be independent of the id) are COPYed into
      temporary tables, and the Slot rows are generated server-side (generate_series x templates, INSERT ..
      SELECT), keys in the order a unit-by-unit load would give them;
    - secondary indexes and constraints are dropped for the load and rebuilt after (one sort each instead of
      millions of random b-tree inserts), then VACUUM ANALYZE.

    `verify_sample` afterwards re-derives a sample of stored rows in Python and compares them byte for byte."""
    started = time.perf_counter()
    stamp = model.instant(datetime.now(UTC) - timedelta(minutes=5))
    last_updated = now_instant()
    codes = sorted(terms.categories)[:categories]
    indexer = services.store.indexer
    columns = {kind: [c.name for c in table.columns] for kind, table in INDEX_TABLES.items()}
    raw = services.store.engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            cursor.execute("SET work_mem = '256MB'")
            cursor.execute("SELECT coalesce(max(res_key), 0) FROM resource")
            next_key = cursor.fetchone()[0] + 1
        first_key = next_key
        resource_rows: list[tuple] = []
        index_rows: dict[str, list[tuple]] = {kind: [] for kind in INDEX_TABLES}
        units: list[tuple] = []  # (unit, first slot key, slot id prefix)
        templates: list[tuple] = []  # (unit, status, body text with SLOT_ID_MARKER)
        template_index: dict[str, list[tuple]] = {kind: [] for kind in INDEX_TABLES}
        seen: set[tuple[str, str]] = set()

        def stamped(body: dict) -> dict:
            body["meta"] = {"versionId": "1", "lastUpdated": last_updated, **body.get("meta", {})}
            return body

        def index_tuples(kind: str, rows: list[dict], head: tuple) -> list[tuple]:
            return [(*head, row["param"], *(row.get(n) for n in columns[kind][2:])) for row in rows]

        for r_index, region_code in enumerate(sorted(terms.regions)[:regions]):
            for key, category, resources in region_resources(terms, r_index, region_code, providers, codes, slots,
                                                             stamp):
                for body in resources:
                    if (body["resourceType"], body["id"]) in seen:  # one Organization per provider
                        continue
                    seen.add((body["resourceType"], body["id"]))
                    body = stamped(body)
                    resource_rows.append((next_key, body["resourceType"], body["id"], fhirjson_bytes(body)))
                    for kind, rows in indexer(body).items():
                        index_rows[kind].extend(index_tuples(kind, rows, (next_key,)))
                    next_key += 1
                unit = len(units)
                prefix = key.slot_id(0)[:-1]
                assert key.slot_id(7) == prefix + "7"
                units.append((unit, next_key, prefix))
                for status in sorted({slot_status(i) for i in range(slots)}):
                    body = stamped(model.slot(key, 0, category, status, stamp))
                    index = indexer(body)
                    if unit == 0:  # the Slot index rows must not depend on the id, or templates would be wrong
                        assert indexer(stamped(model.slot(key, 1, category, status, stamp))) == index
                    templates.append((unit, status, fhirjson_bytes({**body, "id": SLOT_ID_MARKER}).decode()))
                    for kind, rows in index.items():
                        template_index[kind].extend(index_tuples(kind, rows, (unit, status)))
                next_key += slots
        print(f"  built {len(resource_rows):,} resources and {len(templates):,} Slot templates: "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

        with connection.transaction(), connection.cursor() as cursor:
            rebuild = drop_secondary_indexes(cursor, ["resource", "resource_version",
                                                      *(t.name for t in INDEX_TABLES.values())])
            with cursor.copy("COPY resource (res_key, type, id, version, last_updated, deleted, body) "
                             "FROM STDIN") as copy:
                for res_key, resource_type, resource_id, body in resource_rows:
                    copy.write_row((res_key, resource_type, resource_id, 1, last_updated, False, body))
            with cursor.copy("COPY resource_version (res_key, type, id, version, last_updated, method, deleted, "
                             "body) FROM STDIN") as copy:
                for res_key, resource_type, resource_id, body in resource_rows:
                    copy.write_row((res_key, resource_type, resource_id, 1, last_updated, "POST", False, body))
            for kind, rows in index_rows.items():
                if rows:
                    with cursor.copy(f"COPY {INDEX_TABLES[kind].name} ({', '.join(columns[kind])}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            cursor.execute("CREATE TEMP TABLE bench_unit (unit int PRIMARY KEY, first_key bigint, prefix text) "
                           "ON COMMIT DROP")
            cursor.execute("CREATE TEMP TABLE bench_slot (i int PRIMARY KEY, status text) ON COMMIT DROP")
            cursor.execute("CREATE TEMP TABLE bench_template (unit int, status text, body text, "
                           "PRIMARY KEY (unit, status)) ON COMMIT DROP")
            with cursor.copy("COPY bench_unit FROM STDIN") as copy:
                for row in units:
                    copy.write_row(row)
            with cursor.copy("COPY bench_slot FROM STDIN") as copy:
                for i in range(slots):
                    copy.write_row((i, slot_status(i)))
            with cursor.copy("COPY bench_template FROM STDIN") as copy:
                for row in templates:
                    copy.write_row(row)
            print(f"  copied: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            generated = ("FROM bench_unit u CROSS JOIN bench_slot s JOIN bench_template t "
                         "ON t.unit = u.unit AND t.status = s.status ORDER BY 1")
            slot_body = "convert_to(replace(t.body, %(marker)s, u.prefix || s.i), 'UTF8')"
            values = {"marker": SLOT_ID_MARKER, "updated": last_updated}
            cursor.execute("INSERT INTO resource (res_key, type, id, version, last_updated, deleted, body) "
                           f"SELECT u.first_key + s.i, 'Slot', u.prefix || s.i, 1, %(updated)s, false, {slot_body} "
                           f"{generated}", values)
            cursor.execute("INSERT INTO resource_version (res_key, type, id, version, last_updated, method, deleted, "
                           f"body) SELECT u.first_key + s.i, 'Slot', u.prefix || s.i, 1, %(updated)s, 'POST', false, "
                           f"{slot_body} {generated}", values)
            print(f"  Slots generated: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            for kind, rows in template_index.items():
                if not rows:
                    continue
                names = columns[kind][1:]  # param, ...
                cursor.execute(f"CREATE TEMP TABLE bench_idx_{kind} (unit int, status text, "
                               + ", ".join(f"{n} {_pg_type(INDEX_TABLES[kind].c[n])}" for n in names)
                               + ") ON COMMIT DROP")
                with cursor.copy(f"COPY bench_idx_{kind} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(f"INSERT INTO {INDEX_TABLES[kind].name} ({', '.join(columns[kind])}) "
                               f"SELECT u.first_key + s.i, {', '.join('x.' + n for n in names)} "
                               f"FROM bench_unit u CROSS JOIN bench_slot s JOIN bench_idx_{kind} x "
                               "ON x.unit = u.unit AND x.status = s.status ORDER BY 1")
            print(f"  Slot index rows generated: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            cursor.execute("SELECT setval(pg_get_serial_sequence('resource', 'res_key'), %s)", (next_key,))
            rebuild()
            print(f"  indexes and constraints rebuilt: {time.perf_counter() - started:.0f} s", file=sys.stderr,
                  flush=True)
        connection.commit()
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        connection.autocommit = False
    finally:
        raw.close()
    written = next_key - first_key
    return written, time.perf_counter() - started


SLOT_ID_MARKER = "@@bench-slot-id@@"


def _pg_type(column) -> str:  # type: ignore[no-untyped-def]
    return {"Float": "double precision", "Integer": "integer"}.get(type(column.type).__name__, "text")


def drop_secondary_indexes(cursor, tables: list[str]):  # type: ignore[no-untyped-def]
    """Drop every index and constraint of `tables` except primary keys; returns a function that recreates them
    (unique constraints and indexes first, then foreign keys, which then validate in one pass each)."""
    cursor.execute("SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f')", (tables,))
    constraints = cursor.fetchall()
    cursor.execute("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                   "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS "
                   "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)", (tables,))
    indexes = cursor.fetchall()
    for table, name, _, _ in sorted(constraints, key=lambda c: c[2] != "f"):  # foreign keys first
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")

    def rebuild() -> None:
        for table, name, _, definition in sorted(constraints, key=lambda c: c[2] == "f"):  # unique first
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            cursor.execute(definition)

    return rebuild


def verify_sample(services, terms, regions: int, providers: int, categories: int, slots: int,  # type: ignore[no-untyped-def]
                  sample: int = 300) -> int:
    """Re-derive a random sample of loaded resources in Python (body as `ResourceStore.save` serialises it,
    index rows from the store's indexer) and compare with what the database holds. Returns the number checked."""
    import random

    from sqlalchemy import select

    from gateway.store.schema import resource

    rng = random.Random(7)
    codes = sorted(terms.categories)[:categories]
    region_codes = sorted(terms.regions)[:regions]
    store = services.store
    checked = 0
    with store.read() as connection:
        stamp_row = connection.execute(select(resource.c.body).where(resource.c.type == "Slot").limit(1)).first()
        source_time = model.source_timestamp(fhirjson.loads_trusted(stamp_row.body))
        for _ in range(sample):
            r_index = rng.randrange(len(region_codes))
            p_index = rng.randrange(providers)
            code = rng.choice(codes)
            unit = dict((key.category, (key, category, resources)) for key, category, resources in region_resources(
                terms, r_index, region_codes[r_index], p_index + 1, [code], slots, source_time)
                if key.location == f"L{p_index}-{code}")[code]
            key, category, resources = unit
            i = rng.randrange(slots)
            for body in [*resources, model.slot(key, i, category, slot_status(i), source_time)]:
                stored = store.get(connection, body["resourceType"], body["id"])
                assert stored is not None, body["id"]
                body["meta"] = {"versionId": "1", "lastUpdated": stored.last_updated, **body.get("meta", {})}
                assert bytes(stored.body) == fhirjson_bytes(body), f"body differs: {body['id']}"
                expected = store.indexer(body)
                for kind, table in INDEX_TABLES.items():
                    names = [c.name for c in table.columns][1:]
                    found = sorted(tuple(row) for row in connection.execute(
                        select(*(table.c[n] for n in names)).where(table.c.res_key == stored.res_key)))
                    wanted = sorted(tuple(row.get(n) for n in names) for row in expected.get(kind, []))
                    assert found == wanted, f"{kind} index rows differ: {body['id']}: {found} != {wanted}"
                checked += 1
    return checked


def fhirjson_bytes(body: dict) -> bytes:
    """The bytes `ResourceStore.save` stores: resourceType, id, meta first."""
    ordered = {"resourceType": body["resourceType"], "id": body["id"], "meta": body["meta"],
               **{k: v for k, v in body.items() if k not in {"resourceType", "id", "meta"}}}
    return fhirjson.dumps(ordered)


def timed(client: TestClient, url: str, count: int, db_cpu) -> tuple[float, float, float, float, float | None]:  # type: ignore[no-untyped-def]
    """p50 and p95 latency (ms), sequential req/s, and CPU per request (ms): this process (client + app) and
    the database server's backends (PostgreSQL on this host; None when unknown)."""
    durations = []
    cpu_started, db_started = time.process_time(), db_cpu()
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:300]
        assert len(durations) > 1 or response.json().get("entry"), f"nothing found: {url}"
    app_cpu = (time.process_time() - cpu_started) / count * 1000
    db_finished = db_cpu()
    database = None if db_started is None or db_finished is None else (db_finished - db_started) / count * 1000
    durations.sort()
    p95 = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
    return statistics.median(durations) * 1000, p95 * 1000, count / sum(durations), app_cpu, database


def database_cpu(engine):  # type: ignore[no-untyped-def]
    """A function returning the CPU seconds used so far by the PostgreSQL backends of this database (read from
    /proc: the server must run on this host), or None (SQLite runs in this process: its CPU is ours)."""
    if engine.dialect.name != "postgresql":
        return lambda: None
    from sqlalchemy import text

    ticks = os.sysconf("SC_CLK_TCK")

    def total() -> float | None:
        with engine.connect() as connection:
            pids = [row[0] for row in connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]
        seconds = 0.0
        try:
            for pid in pids:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                seconds += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except (OSError, IndexError, ValueError):
            return None
        return seconds

    return total


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


def slot_search_paths(services, codes: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """The issue's search, one URL per loaded category (`codes`):
    `Slot?status=free&service-type=...&start=ge...&_count=50`, with `start=ge` one hour before the loaded Slots'
    start (read from the data, so that a database loaded earlier and kept still matches: the Slots start when the
    loader ran)."""
    from sqlalchemy import select

    from gateway.store.schema import resource

    with services.store.read() as connection:
        body = connection.execute(select(resource.c.body).where(resource.c.type == "Slot").order_by(
            resource.c.res_key).limit(1)).scalar_one()
    loaded = model.parse_instant(fhirjson.loads_trusted(body)["start"])
    start = model.instant(min(loaded, datetime.now(UTC)) - timedelta(hours=1))
    return [f"/fhir/Slot?status=free&service-type={CATEGORY_SYSTEM}|{code}&start=ge{start.replace('+', '%2B')}"
            "&_count=50" for code in codes]


# -- server mode: `zcc-gateway serve --workers N` under wrk ----------------------------------------------------

WRK_SCRIPT = """
local paths = {%s}
local latest = %d
local spread = %d
local n = 0
request = function()
  n = n + 1
  local path = paths[(n %% #paths) + 1]
  if spread > 0 then  -- start=ge a different second per request (as clients send `now`): no two URLs alike
    path = path:gsub("start=ge[^&]*", "start=ge" .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", latest - (n %% spread)))
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%f %%f %%f %%f %%d %%d %%d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout))
end
"""
TOKEN_SCOPE = "system/Slot.rs system/Schedule.rs system/HealthcareService.rs system/Location.rs"


def measure_server(url: str, args: argparse.Namespace, paths: list[str]) -> None:
    """`zcc-gateway serve --workers N` in its own processes on the loaded database, loaded by wrk over
    --connections keep-alive connections for --duration seconds, round-robin over the 12 categories' searches.
    Auth: a real access token (client credentials, role triagist-hap, a care organisation's URA; tokens are
    verified per request, the verification cached per token) or --auth insecure-dev. Audit and consent on.
    CPU per request: the gateway processes, the PostgreSQL server processes (this host), wrk."""
    import shutil

    from bench.rest import free_port, wait_up
    from bench.summary import _children_cpu, _tree_cpu

    if not shutil.which("wrk"):
        sys.exit("--server needs wrk: scripts/ensure-bench-tools.sh")
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ZCC_DATABASE_URL": url, "ZCC_BASE_URL": f"{origin}/fhir", "ZCC_AUTH_KEY_DIR":
           tempfile.mkdtemp()}
    env.pop("ZCC_INSECURE_DEV", None)
    if args.auth == "insecure-dev":
        env["ZCC_INSECURE_DEV"] = "1"
    command = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    if args.profile:  # one worker in this script, under cProfile, profiling from the end of the warm-up
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-profiled", str(port), args.profile]
    gateway = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"{origin}/fhir/metadata", gateway)
        header = []
        if args.auth == "token":
            from tests.auth.fixtures import obtain_token

            token = obtain_token(origin, url, scope=TOKEN_SCOPE, role="triagist-hap")["access_token"]
            header = ["-H", f"Authorization: Bearer {token}"]
        import httpx

        for path in paths:  # every category finds free Slots (and the token is accepted)
            response = httpx.get(origin + path, headers=dict([header[1].split(": ", 1)]) if header else {})
            assert response.status_code == 200 and response.json().get("entry"), (path, response.text[:300])
        script = Path(tempfile.mkdtemp()) / "capacity.lua"
        latest = re.search(r"start=ge([^&]+)", paths[0])
        epoch = int(datetime.fromisoformat(latest.group(1).replace("Z", "+00:00")).timestamp()) if latest else 0
        spread = 0 if args.same_start else 3600
        script.write_text(WRK_SCRIPT % (",".join(f'"{path}"' for path in paths), epoch, spread))
        postmaster = _postmaster(url)
        for connections in args.connections:
            _wrk(origin, script, header, connections, 3)  # warm-up: every worker, connection and plan
            if args.profile:
                gateway.send_signal(signal.SIGUSR1)
            load = os.getloadavg()[0]
            gateway_cpu, database_cpu, client_cpu = _tree_cpu(gateway.pid), _pg_cpu(postmaster), _children_cpu()
            requests, seconds, p50, p95, p99, non_2xx, socket_errors, timeouts = _wrk(
                origin, script, header, connections, args.duration)
            gateway_cpu = _tree_cpu(gateway.pid) - gateway_cpu
            database_cpu = _pg_cpu(postmaster) - database_cpu if postmaster else None
            client_cpu = _children_cpu() - client_cpu
            per = 1000 / max(requests, 1)
            total = gateway_cpu + (database_cpu or 0.0)
            database = f"{database_cpu * per:.1f} ms" if database_cpu is not None else "not measured"
            print(f"| server: {args.workers} workers, {connections} connections, auth {args.auth}, "
                  f"{len(paths)} categories round-robin, {seconds:.0f} s (load {load:.1f}->{os.getloadavg()[0]:.1f}, "
                  f"{os.cpu_count()} cores, {'same start' if args.same_start else 'start=ge varies per request'}"
                  f") | **{requests / seconds:.1f} searches/s**, p50 {p50:.1f} ms, "
                  f"p95 {p95:.1f} ms, p99 {p99:.1f} ms; {int(requests)} requests, non-2xx {int(non_2xx)}, "
                  f"socket errors {int(socket_errors)}, timeouts {int(timeouts)}; CPU/request: gateway "
                  f"{gateway_cpu * per:.2f} ms, database {database}, wrk {client_cpu * per:.2f} ms; "
                  f"searches/s per core (gateway + database CPU) {requests / max(total, 1e-9):.0f} |", flush=True)
    finally:
        gateway.send_signal(signal.SIGINT) if args.profile else gateway.terminate()
        gateway.wait(timeout=60)
    if args.profile:
        import pstats

        print(f"profile (one worker, CPU per thread, request threads merged): {args.profile}", file=sys.stderr)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)


def serve_profiled(port: int, out: str) -> None:
    """One gateway worker (`app_from_environment`, as `serve` runs it) under cProfile with a per-thread CPU clock:
    the event loop thread and every request thread (audited GETs run in the thread pool) are profiled from
    SIGUSR1 on; on SIGINT the merged stats are written to `out`."""
    import cProfile
    import pstats
    import threading

    import uvicorn

    if _INSECURE_DEV is None:  # the environment `measure_server` chose: real tokens unless --auth insecure-dev
        os.environ.pop("ZCC_INSECURE_DEV", None)
    import gateway.fhir.routes as routes
    from gateway.app import app_from_environment

    app = app_from_environment()
    active = threading.Event()
    profilers: list[cProfile.Profile] = []
    local = threading.local()
    original = routes.run_in_threadpool

    def in_thread(function, *arguments, **keywords):  # type: ignore[no-untyped-def]
        if not active.is_set():
            return function(*arguments, **keywords)
        profiler = getattr(local, "profiler", None)
        if profiler is None:
            profiler = local.profiler = cProfile.Profile(time.thread_time)
            profilers.append(profiler)
        profiler.enable()
        try:
            return function(*arguments, **keywords)
        finally:
            profiler.disable()

    async def profiled(function, *arguments, **keywords):  # type: ignore[no-untyped-def]
        return await original(in_thread, function, *arguments, **keywords)

    routes.run_in_threadpool = profiled
    loop_profiler = cProfile.Profile(time.thread_time)

    def start(*_: object) -> None:
        active.set()
        loop_profiler.enable()

    signal.signal(signal.SIGUSR1, start)
    try:
        uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()
    finally:
        loop_profiler.disable()
        stats = pstats.Stats(loop_profiler)
        for profiler in profilers:
            stats.add(profiler)
        stats.dump_stats(out)


def _wrk(origin: str, script: Path, header: list[str], connections: int, duration: int) -> tuple[float, ...]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", *header, "-s",
                          str(script), origin], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return tuple(float(value) for value in line.split()[1:])


def _postmaster(url: str) -> int | None:
    """The PostgreSQL server's process id when it runs on this host (its CPU is then measurable), else None."""
    from sqlalchemy import create_engine, text

    if not url.startswith("postgresql"):
        return None  # SQLite: in the gateway's own processes
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            data_dir = connection.execute(text("SHOW data_directory")).scalar_one()
    finally:
        engine.dispose()
    pid_file = Path(data_dir) / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def _pg_cpu(postmaster: int | None) -> float:
    from bench.summary import _tree_cpu

    return _tree_cpu(postmaster) if postmaster else 0.0


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
        if services.store.engine.dialect.name == "postgresql":  # SQLite was loaded by ResourceStore.save itself
            checked = verify_sample(services, terms, args.regions, args.providers, args.categories, args.slots)
            print(f"  verified {checked} sampled resources: stored bytes and index rows as the store writes them",
                  file=sys.stderr, flush=True)
        print(f"| {name}: bulk load, {slot_count:,} Slots ({written:,} resources) | {written / seconds:,.0f} "
              f"resources/s ({seconds:.0f} s) |")
    code = sorted(terms.categories)[0]
    if args.server:
        services.capacity.hub.stop()
        services.store.engine.dispose()
        measure_server(url, args, slot_search_paths(services, sorted(terms.categories)[:args.categories]))
        return
    searches = {
        f"Slot?status=free&service-type={code}&start=ge...": slot_search_paths(services, [code])[0],
        "$find-capacity category+region+near": f"/fhir/Slot/$find-capacity?category={code}&region=oost"
        "&near=51.84|5.86|50|km",
    }
    with TestClient(app) as client:
        for label, url_path in searches.items():
            count = args.search_requests if label.startswith("Slot?") else args.requests
            if not count:
                print(f"| {name}: {label} | not measured (0 requests) |")
                continue
            client.get(url_path)  # warm-up (first-request imports and caches), not measured
            p50, p95, rate, app_cpu, db_cpu = timed(client, url_path, count, database_cpu(services.store.engine))
            cpu = f"CPU/request: app {app_cpu:.1f} ms" + (f", database {db_cpu:.1f} ms" if db_cpu is not None else "")
            print(f"| {name}: {label} ({count} sequential) | p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"{rate:.1f} req/s; {cpu} |", flush=True)
        print(f"| {name}: bed-status feed, {args.rows} rows in one POST | {feed_rate(client, terms, args.rows):.1f} "
              "rows/s |")
        p50, p95 = notification_latency(client, args.notifications)
        print(f"| {name}: notification latency, feed write -> websocket ping ({args.notifications}x) | "
              f"p50 {p50:.0f} ms, p95 {p95:.0f} ms |")
    services.capacity.hub.stop()


def persistent_cluster(directory: Path):  # type: ignore[no-untyped-def]
    """A PostgreSQL cluster in `directory` that outlives the run (load 1M Slots once, measure many times):
    created and initialised on first use, restarted (on a free port) afterwards. Returns the running server
    (`.stop_keep()` stops it and keeps the files), the URL of its `capacity` database, and whether that
    database was loaded by an earlier run."""
    import shutil

    from tests.pg import TemporaryPostgres, _free_port, _run_as, find_pg_bin

    class Kept(TemporaryPostgres):
        def stop_keep(self) -> None:
            subprocess.run(self._command(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                                         "-w", "stop"), check=False, capture_output=True, cwd=self.directory)

        def restart(self) -> None:
            options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
            subprocess.run(self._command(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
                                         "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start"),
                           check=True, capture_output=True, cwd=self.directory)

    directory.mkdir(parents=True, exist_ok=True)
    server = Kept(directory=directory.resolve(), bin_dir=find_pg_bin(), user=_run_as(), port=_free_port())
    url = f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/capacity"
    if (directory / "data" / "PG_VERSION").exists():
        if (directory / "data" / "postmaster.pid").exists():
            sys.exit(f"{directory} is running (or was not stopped cleanly): "
                     f"pg_ctl -D {directory / 'data'} stop, then retry")
        server.restart()
        loaded = (directory / "loaded").exists()
        if not loaded:
            sys.exit(f"{directory} holds no completed load: remove it and run again")
        return server, url, True
    if server.user:
        shutil.chown(directory, server.user)
    server.start()  # initdb + start
    from sqlalchemy import create_engine, text

    engine = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text('CREATE DATABASE "capacity"'))
    engine.dispose()
    return server, url, False


def main() -> None:
    if sys.argv[1:2] == ["--serve-profiled"]:
        serve_profiled(int(sys.argv[2]), sys.argv[3])
        return
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
    parser.add_argument("--cluster", help="a PostgreSQL cluster directory kept between runs: the first run creates "
                        "and loads it, later runs restart it and measure (stopped again at the end)")
    parser.add_argument("--server", action="store_true", help="measure `zcc-gateway serve --workers N` under wrk "
                        "load (searches/s with concurrency) on the loaded database instead of in-process latency")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", default="8", help="wrk connections; comma-separated for several runs")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--profile", metavar="FILE", help="server mode: one worker under cProfile (CPU clock), "
                        "stats written to FILE and the top printed")
    parser.add_argument("--same-start", action="store_true", help="server mode: every request of a category "
                        "sends the same start=ge (default: a different second per request, up to an hour back, as "
                        "clients asking from `now` do; the matches are the same)")
    parser.add_argument("--auth", choices=["token", "insecure-dev"], default="token",
                        help="server mode: a real access token (default) or ZCC_INSECURE_DEV")
    parser.add_argument("--keep-running", action="store_true", help="with --cluster: leave the server running")
    parser.add_argument("--backend", choices=["sqlite", "pg", "both"], default=None,
                        help="which database(s); default sqlite, or both with --pg")
    args = parser.parse_args()
    backend = args.backend or ("both" if args.pg else "sqlite")
    args.connections = [int(c) for c in str(args.connections).split(",")]
    args.search_requests = args.requests if args.search_requests is None else args.search_requests
    print(json.dumps({k: v for k, v in vars(args).items()}))
    print("| measurement | result |\n|---|---|")
    if args.database:
        run("PostgreSQL" if "postgres" in args.database else "SQLite", args.database, args)
        return
    if args.cluster:  # PostgreSQL only
        server, url, loaded = persistent_cluster(Path(args.cluster))
        try:
            if not loaded:
                run("PostgreSQL", url, args)
                (Path(args.cluster) / "loaded").write_text(json.dumps(vars(args)))
            else:
                args.database = url
                run("PostgreSQL", url, args)
        finally:
            if not args.keep_running:
                server.stop_keep()
            else:
                print(f"cluster left running: {url}", file=sys.stderr)
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
