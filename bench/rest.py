"""REST benchmark (not a test): load 10,000 Patients and 50,000 Observations, then measure read, search and
create throughput with wrk (a separate process) against `zcc-gateway serve --workers 4`, on SQLite and on
PostgreSQL, next to a bare Starlette endpoint returning the same bytes (the framework ceiling).

    .venv/bin/python bench/rest.py [--patients 10000] [--observations 50000] [--duration 10]
                                   [--backends sqlite,postgres]

Prints a Markdown table; copy it into docs/benchmarks.md with the machine and date."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOINC = ["8867-4", "8310-5", "9279-1", "59408-5", "8480-6"]

WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.errors.status, summary.requests))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_gateway(database: str, port: int, workers: int) -> subprocess.Popen:
    # The core REST path with authentication on (every request verifies a real token); consent and audit are
    # measured separately (issue [consent-audit]), so they are off here.
    env = {
        **os.environ,
        "ZCC_DATABASE_URL": database,
        "ZCC_BASE_URL": f"http://127.0.0.1:{port}/fhir",
        "ZCC_CONSENT": "off",
        "ZCC_AUDIT": "off",
        "ZCC_AUTH_KEY_DIR": tempfile.mkdtemp(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_up(f"http://127.0.0.1:{port}/fhir/metadata", process)
    return process


def token_header(base: str, database: str) -> dict[str, str]:
    from tests.auth.fixtures import obtain_auth_header

    return obtain_auth_header(base.removesuffix("/fhir"), database)


def load_data(base: str, database: str, patients: int, observations: int) -> list[str]:
    ids = [f"bench-p{i}" for i in range(patients)]
    client = httpx.Client(timeout=300)
    started = time.monotonic()
    client.headers.update(token_header(base, database))
    entries: list[dict] = []

    def flush() -> None:
        nonlocal started
        if time.monotonic() - started > 240:  # tokens live 300 s
            client.headers.update(token_header(base, database))
            started = time.monotonic()
        if entries:
            response = client.post(
                base,
                json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
            )
            response.raise_for_status()
            entries.clear()

    for index, pid in enumerate(ids):
        entries.append(
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "identifier": [{"system": "urn:bench", "value": str(index)}],
                    "name": [{"family": f"Fam{index % 500}", "given": ["Bench"]}],
                    "gender": "female" if index % 2 else "male",
                    "birthDate": f"19{40 + index % 60}-01-01",
                },
                "request": {"method": "PUT", "url": f"Patient/{pid}"},
            }
        )
        if len(entries) >= 500:
            flush()
    flush()
    for index in range(observations):
        oid = f"bench-o{index}"
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": oid,
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": LOINC[index % 5]}]},
                    "subject": {"reference": f"Patient/{ids[index % len(ids)]}"},
                    "effectiveDateTime": "2026-11-01T10:00:00Z",
                    "valueQuantity": {
                        "value": 60 + index % 40,
                        "unit": "/min",
                        "system": "http://unitsofmeasure.org",
                        "code": "/min",
                    },
                },
                "request": {"method": "PUT", "url": f"Observation/{oid}"},
            }
        )
        if len(entries) >= 500:
            flush()
    flush()
    return ids


def wrk(
    url: str, script: str, duration: int, headers: dict[str, str] | None = None, connections: int = 32
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + WRK_REPORT)
    header_args = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", *header_args, "-s", handle.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    rps, p50, p95, errors, total = line.split()[1:]
    return {"rps": float(rps), "p50": float(p50), "p95": float(p95), "errors": int(errors), "total": int(total)}


def lua_paths(paths: list[str], method: str = "GET", body: str | None = None) -> str:
    items = ",".join(json.dumps(p) for p in paths)
    body_line = f'wrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/fhir+json"' if body else ""
    return f"""
local paths = {{{items}}}
wrk.method = "{method}"
{body_line}
request = function() return wrk.format(nil, paths[math.random(#paths)]) end
"""


def measure_backend(name: str, database: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    server = start_gateway(database, port, args.workers)
    try:
        started = time.monotonic()
        ids = load_data(base, database, args.patients, args.observations)
        load_seconds = time.monotonic() - started
        sample = random.sample(ids, min(2000, len(ids)))
        results = {
            "load": {
                "rps": (args.patients + args.observations) / load_seconds,
                "p50": 0,
                "p95": 0,
                "errors": 0,
                "total": args.patients + args.observations,
            }
        }
        auth = token_header(base, database)
        results["read"] = wrk(base, lua_paths([f"/fhir/Patient/{pid}" for pid in sample]), args.duration, auth)
        searches = [
            f"/fhir/Observation?subject=Patient/{pid}&code=http://loinc.org|{random.choice(LOINC)}" for pid in sample
        ]
        results["search"] = wrk(base, lua_paths(searches), args.duration, auth)
        create_body = json.dumps({"resourceType": "Patient", "name": [{"family": "Created"}], "gender": "other"})
        results["create"] = wrk(base, lua_paths(["/fhir/Patient"], "POST", create_body), args.duration, auth)
        patient_bytes = httpx.get(f"{base}/Patient/{sample[0]}", headers=auth).content
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["ceiling"] = measure_ceiling(patient_bytes, args)
    return results


def measure_ceiling(body: bytes, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(body)
    port = free_port()
    env = {**os.environ, "CEILING_BODY_FILE": handle.name, "PYTHONPATH": str(ROOT / "bench")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ceiling_app:app",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/fhir/Patient/x", server)
        return wrk(f"http://127.0.0.1:{port}", lua_paths(["/fhir/Patient/x"]), args.duration)
    finally:
        server.terminate()
        server.wait(timeout=30)


def postgres_database() -> tuple[str, object]:
    from tests.pg import start_temporary_postgres  # the same throw-away cluster helper the tests use

    server = start_temporary_postgres()
    return server.url, server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--observations", type=int, default=50_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    rows = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            folder = tempfile.mkdtemp()
            results = measure_backend("sqlite", f"sqlite:///{folder}/bench.db", args)
        else:
            url, server = postgres_database()
            try:
                results = measure_backend("postgres", url, args)
            finally:
                server.stop()  # type: ignore[attr-defined]
        rows.append((backend, results))
    print(
        f"\nMachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; "
        f"{args.patients} Patients, {args.observations} Observations, wrk -t2 -c32 -d{args.duration}s, "
        f"--workers {args.workers}\n"
    )
    print("| backend | measure | req/s | p50 ms | p95 ms | non-2xx |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, results in rows:
        for measure in ("load", "read", "search", "create", "ceiling"):
            r = results[measure]
            print(f"| {backend} | {measure} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['errors']} |")
        print(f"| {backend} | read / ceiling | {results['read']['rps'] / results['ceiling']['rps']:.2f} | | | |")


if __name__ == "__main__":
    main()
