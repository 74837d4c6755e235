"""$summary latency and throughput: one patient with 500 resources from four sources (HAP, RAV, VVT, ggz tags,
with Provenance), consent and audit on, real token. Two ways to run it:

in-process (default): TestClient, one client, one request at a time. Prints p50/p95, req/s, the CPU time this
process spent per request (less sensitive to a loaded box than wall time) and the load average.
"warm": the patient's record is in the summary's record cache (checked against the database on every request);
"cold": the cache is off, every request reads and parses the compartment.

    .venv/bin/python bench/summary.py [--requests 200] [--backends sqlite,postgres] [--modes warm,cold]

server (--server): the target's setting, "2 cores": `zcc-gateway serve --workers 2` in its own processes, loaded by
wrk (C, little CPU of its own) over --connections keep-alive connections for --duration seconds, spread over
--patients patients of 500 resources each (warm: each worker keeps their records in its cache, still checked
against the database on every request). Prints req/s, p50/p95 and the CPU time per request of the gateway
processes, of the PostgreSQL processes (the same box) and of wrk — on a shared box the CPU figures are the
stable ones: the cores needed for 50 summaries/s are about 50 x (gateway + database) CPU seconds per second.

    .venv/bin/python bench/summary.py --server [--workers 2] [--connections 8] [--duration 20] [--patients 4]
                                      [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from bench.rest import free_port, wait_up  # noqa: E402
from gateway.app import build_services, create_app  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.auth.fixtures import GatewayTokenAuth  # noqa: E402

SOURCES = ["N6", "AMB", "R5", "G5"]  # HAP, RAV, VVT, ggz
TYPES = ["Condition", "AllergyIntolerance", "Observation", "Encounter", "MedicationStatement", "Flag", "Procedure"]


def seed(store, total: int = 500) -> str:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with store.write() as connection:
        patient, _ = store.save(connection, {"resourceType": "Patient", "name": [{"text": "Bench Patiënt"}]})
        subject = {"reference": f"Patient/{patient.id}"}
        store.save(connection, {"resourceType": "Encounter", "status": "in-progress", "subject": subject,
                                "class": {"code": "EMER"}, "period": {"start": now.isoformat(timespec="seconds")}})
        for org_type in SOURCES:
            org, _ = store.save(connection, {"resourceType": "Organization", "name": f"Bron {org_type}"})
            targets = []
            for n in range(total // len(SOURCES) - 1):
                kind = TYPES[n % len(TYPES)]
                body = _resource(kind, subject, n, now - timedelta(days=n))
                body["meta"] = {"tag": [{"system": "http://nictiz.nl/fhir/NamingSystem/organization-type",
                                         "code": org_type}]}
                stored, _ = store.save(connection, body)
                targets.append({"reference": f"{kind}/{stored.id}"})
            store.save(connection, {"resourceType": "Provenance", "target": [subject, *targets],
                                    "recorded": now.isoformat(timespec="seconds"),
                                    "agent": [{"who": {"reference": f"Organization/{org.id}"}}]})
    return patient.id


def _resource(kind: str, subject: dict, n: int, when: datetime) -> dict:
    code = {"coding": [{"system": "http://snomed.info/sct", "code": str(100000 + n % 40), "display": f"code {n % 40}"}]}
    day = when.date().isoformat()
    return {
        "Condition": {"resourceType": "Condition", "subject": subject, "code": code, "onsetDateTime": day,
                      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                     "code": "active"}]}},
        "AllergyIntolerance": {"resourceType": "AllergyIntolerance", "patient": subject, "code": code,
                               "onsetDateTime": day},
        "Observation": {"resourceType": "Observation", "status": "final", "subject": subject, "code": code,
                        "effectiveDateTime": day, "category": [{"coding": [{
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs"}]}]},
        "Encounter": {"resourceType": "Encounter", "status": "finished", "subject": subject, "class": {"code": "AMB"},
                      "period": {"start": when.isoformat(timespec="seconds")}},
        "MedicationStatement": {"resourceType": "MedicationStatement", "status": "active", "subject": subject,
                                "medicationCodeableConcept": code},
        "Flag": {"resourceType": "Flag", "status": "active", "subject": subject, "code": code},
        "Procedure": {"resourceType": "Procedure", "status": "completed", "subject": subject, "code": code,
                      "performedDateTime": day},
    }[kind]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--modes", default="warm,cold")
    parser.add_argument("--server", action="store_true", help="measure `serve --workers N` under wrk load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--patients", type=int, default=4)
    args = parser.parse_args()
    if args.server and not shutil.which("wrk"):
        sys.exit("--server needs wrk: make bench-tools (apt-get install wrk)")
    modes = args.modes.split(",")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
            if args.server:
                measure_server(url, args, None)
            else:
                measure(url, args.requests, modes)
            continue
        from tests.pg import fresh_database, start_temporary_postgres  # the tests' throw-away cluster

        server = start_temporary_postgres()
        try:
            if args.server:
                measure_server(fresh_database(server.url, "bench"), args, server.data_dir)
            else:
                measure(fresh_database(server.url, "bench"), args.requests, modes)
        finally:
            server.stop()


def measure(url: str, requests: int, modes: list[str]) -> None:
    services = build_services(Settings(database_url=url, base_url="http://testserver/fhir", validation="off"))
    patient = seed(services.store)
    app = create_app(services=services)
    cache = getattr(services.pipeline.operations["summary"].handler, "cache", None)  # None: a build without one
    with TestClient(app) as client:
        client.auth = GatewayTokenAuth(app, url, role="triagist-hap")
        path = f"/fhir/Patient/{patient}/$summary"
        first = client.get(path)
        assert first.status_code == 200, first.text
        entries = len(first.json()["entry"])
        for mode in modes if cache is not None else ["uncached"]:
            size = cache.size if cache is not None else 0
            if mode == "cold":
                cache.size = 0
                cache.clear()
            _run(client, path, requests, url, entries, mode, cache)
            if cache is not None:
                cache.size = size


def _run(client: TestClient, path: str, requests: int, url: str, entries: int, mode: str, cache) -> None:  # type: ignore[no-untyped-def]
    client.get(path)  # warm-up
    hits, timings = getattr(cache, "hits", 0), []
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"database={url.split(':')[0]} mode={mode} resources=500 entries={entries} requests={requests} "
          f"cache-hits={getattr(cache, 'hits', 0) - hits} load={load:.1f}->{os.getloadavg()[0]:.1f}")
    print(f"  p50={statistics.median(timings):.1f} ms p95={p95:.1f} ms throughput={requests / elapsed:.1f} req/s "
          f"cpu={cpu / requests * 1000:.1f} ms/req")


# -- server mode ---------------------------------------------------------------------------------------------

WRK_SCRIPT = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%f %%f %%f %%d %%d %%d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write, summary.errors.timeout))
end
"""


def measure_server(url: str, args: argparse.Namespace, pg_data: Path | None) -> None:
    from tests.auth.fixtures import obtain_token

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    services = build_services(Settings(database_url=url, base_url=f"{origin}/fhir", validation="off"))
    patients = [seed(services.store) for _ in range(args.patients)]
    services.store.engine.dispose()
    env = {**os.environ, "ZCC_DATABASE_URL": url, "ZCC_BASE_URL": f"{origin}/fhir", "ZCC_VALIDATION": "off",
           "ZCC_AUTH_KEY_DIR": tempfile.mkdtemp()}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(f"{origin}/fhir/metadata", gateway)
        token = obtain_token(origin, url, role="triagist-hap")["access_token"]
        paths = [f"/fhir/Patient/{patient}/$summary" for patient in patients]
        script = Path(tempfile.mkdtemp()) / "summary.lua"
        script.write_text(WRK_SCRIPT % ",".join(f'"{path}"' for path in paths))
        header = f"Authorization: Bearer {token}"
        _wrk(origin, script, header, args.connections, 3)  # warm-up: every worker caches every patient
        load = os.getloadavg()[0]
        gateway_cpu, database_cpu = _tree_cpu(gateway.pid), _postgres_cpu(pg_data)
        client_cpu = _children_cpu()
        result = _wrk(origin, script, header, args.connections, args.duration)
        gateway_cpu, database_cpu = _tree_cpu(gateway.pid) - gateway_cpu, _postgres_cpu(pg_data) - database_cpu
        client_cpu = _children_cpu() - client_cpu
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    requests, seconds, p50, p95, non_2xx, socket_errors, timeouts = result
    per = 1000 / max(requests, 1)
    print(f"database={url.split(':')[0]} mode=server workers={args.workers} connections={args.connections} "
          f"patients={args.patients} resources=500 duration={seconds:.0f}s requests={int(requests)} "
          f"non-2xx={int(non_2xx)} socket-errors={int(socket_errors)} timeouts={int(timeouts)} "
          f"load={load:.1f}->{os.getloadavg()[0]:.1f} cores={os.cpu_count()}")
    database = f" database-cpu={database_cpu * per:.1f} ms/req" if pg_data is not None else ""
    print(f"  throughput={requests / seconds:.1f} req/s p50={p50:.1f} ms p95={p95:.1f} ms "
          f"gateway-cpu={gateway_cpu * per:.1f} ms/req{database} client-cpu={client_cpu * per:.1f} ms/req "
          f"(cores for 50/s: {50 * (gateway_cpu + database_cpu) / max(requests, 1):.2f})")


def _wrk(origin: str, script: Path, header: str, connections: int, duration: int) -> tuple[float, ...]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-H", header, "-s", str(script),
         origin],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return tuple(float(value) for value in line.split()[1:])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: wrk
    return usage.ru_utime + usage.ru_stime


def _tree_cpu(root: int) -> float:
    """User + system seconds of a live process and all its live descendants (the gateway's workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


def _postgres_cpu(data_dir: Path | None) -> float:
    if data_dir is None:
        return 0.0
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    return _tree_cpu(postmaster)


if __name__ == "__main__":
    main()
