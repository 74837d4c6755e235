"""Overhead of the consent and audit stages: a single read and a 200-resource search page, with both stages off,
consent only, and consent + audit. Prints medians and the ratio to the bare run (target: <= 1.5x).

    .venv/bin/python bench/consent_audit.py [rounds]          # in-process HTTP (TestClient, real SMART tokens)
    .venv/bin/python bench/consent_audit.py [rounds] --http   # over real HTTP: one uvicorn per configuration

The three gateways use separate SQLite databases with the same data: patient `pa` with an active zcc contact and
200 Observations. Requests are interleaved round-robin so that machine noise hits every configuration alike.
In-process, besides wall-clock time it reports the process CPU time per request (all threads: the test
client's, the event loop's and the worker thread's), which a machine shared with other jobs inflates far less
than wall-clock time. Over HTTP (`--http`: `zcc-gateway serve` with one worker per configuration, a keep-alive
httpx client on loopback) it reports the client-side latency and the server process's CPU time per request
(all its threads, from /proc/<pid>/task/*/schedstat, in batches of 20 requests).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey, fetch_token
from gateway.settings import Settings

PAGE = 200
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.rest


def population() -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "pa"},
        {"resourceType": "Encounter", "id": "ea", "status": "in-progress", "class": {"code": "EMER"},
         "subject": {"reference": "Patient/pa"}, "period": {"start": start}},
    ]
    for n in range(PAGE):
        resources.append({"resourceType": "Observation", "id": f"o{n}", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": f"pulse {n}"},
                          "subject": {"reference": "Patient/pa"}, "valueQuantity": {"value": 60 + n % 40}})
    return resources


def prepared(database: str, base_url: str, consent: bool, audit: bool) -> tuple[Any, ClientKey]:
    """Services on `database` holding the population and the registered bench client (and its key)."""
    settings = Settings(database_url=database, base_url=base_url, consent=consent, audit=audit, validation="off")
    services = build_services(settings)
    with services.store.write() as connection:
        for body in population():
            services.store.save(connection, body, body["id"])
    key = ClientKey.generate("EC")
    ClientRegistry(services.store.engine).add(
        ClientRegistration("bench", "00001111", "N6", "system/*.rs", ("triagist",), ("TREAT",), jwks=key.public_jwks()),
        actor="bench",
    )
    return services, key


def gateway(directory: Path, name: str, consent: bool, audit: bool) -> tuple[TestClient, dict[str, str]]:
    services, key = prepared(f"sqlite:///{directory / name}.db", "http://testserver/fhir", consent, audit)
    client = TestClient(create_app(services=services))
    client.__enter__()
    token_url = client.get("/.well-known/smart-configuration").json()["token_endpoint"]
    token = fetch_token(token_url, "bench", key, "system/*.rs",
                        claims={"subject_role": "triagist", "purpose_of_use": "TREAT"}, client=client)
    return client, {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json"}


def timed(client: TestClient, headers: dict[str, str], url: str, expect: int) -> tuple[float, float]:
    """(wall-clock seconds, process CPU seconds) of one request."""
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(url, headers=headers)
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if response.status_code != 200 or (expect and len(response.json().get("entry", [])) != expect):
        raise SystemExit(f"{url}: unexpected answer {response.status_code} {response.text[:200]}")
    return elapsed, used


def main(rounds: int) -> None:
    os.environ.setdefault("ZCC_AUTH_KEY_DIR", tempfile.mkdtemp(prefix="bench-keys"))
    os.environ.setdefault("ZCC_AUDIT_KEY_DIR", os.environ["ZCC_AUTH_KEY_DIR"])
    directory = Path(tempfile.mkdtemp(prefix="bench-consent-audit"))
    configurations = {
        "bare": gateway(directory, "bare", consent=False, audit=False),
        "consent": gateway(directory, "consent", consent=True, audit=False),
        "consent+audit": gateway(directory, "full", consent=True, audit=True),
    }
    workloads = {
        "read Observation/o7": ("/fhir/Observation/o7", 0),
        f"search page of {PAGE}": (f"/fhir/Observation?subject=Patient/pa&_count={PAGE}", PAGE),
    }
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {(w, c): [] for w in workloads for c in configurations}
    for workload, (url, expect) in workloads.items():
        for client, headers in configurations.values():  # warm caches, token verification, statements
            for _ in range(3):
                timed(client, headers, url, expect)
        for _ in range(rounds if expect == 0 else max(rounds // 5, 5)):
            for name, (client, headers) in configurations.items():
                samples[(workload, name)].append(timed(client, headers, url, expect))
    print(f"consent + audit overhead, {rounds} rounds, medians (in-process HTTP, SQLite); wall clock | process CPU")
    for workload in workloads:
        bare = [statistics.median(sample[i] for sample in samples[(workload, "bare")]) for i in (0, 1)]
        for name in configurations:
            wall, cpu = (statistics.median(sample[i] for sample in samples[(workload, name)]) for i in (0, 1))
            print(f"  {workload:<22} {name:<14} {wall * 1000:8.2f} ms x{wall / bare[0]:.2f}"
                  f"   | {cpu * 1000:8.2f} ms x{cpu / bare[1]:.2f}")


# -- over real HTTP ----------------------------------------------------------------------------------------------


class Server:
    """`zcc-gateway serve --workers 1` (uvicorn, one process) on a prepared database, on loopback."""

    def __init__(self, directory: Path, name: str, consent: bool, audit: bool,
                 launcher: tuple[str, ...] = ("-m", "gateway.cli"), env: dict[str, str] | None = None) -> None:
        """`launcher`: what runs `zcc-gateway` in the server's Python (bench/stage_times.py adds timers first)."""
        from bench.rest import free_port, wait_up

        port = free_port()
        self.base = f"http://127.0.0.1:{port}/fhir"
        database = f"sqlite:///{directory / name}.db"
        services, key = prepared(database, self.base, consent, audit)
        services.store.engine.dispose()
        env = {**os.environ, **(env or {}), "ZCC_DATABASE_URL": database, "ZCC_BASE_URL": self.base,
               "ZCC_VALIDATION": "off", "ZCC_CONSENT": "on" if consent else "off",
               "ZCC_AUDIT": "on" if audit else "off"}
        env.pop("ZCC_INSECURE_DEV", None)
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "serve", "--port", str(port), "--workers", "1"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS) if SERVER_CPUS else None,
        )
        wait_up(f"{self.base}/metadata", self.process)
        self.client = httpx.Client(timeout=30)
        token_url = self.client.get(f"{self.base}/.well-known/smart-configuration").json()["token_endpoint"]
        token = fetch_token(token_url, "bench", key, "system/*.rs",
                            claims={"subject_role": "triagist", "purpose_of_use": "TREAT"}, client=self.client)
        self.headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json"}

    def cpu(self) -> float:
        """Seconds on a CPU of every thread of the server process so far."""
        total = 0
        for stat in Path(f"/proc/{self.process.pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, ValueError, IndexError):  # a thread that just ended
                pass
        return total / 1e9

    def batch(self, path: str, expect: int, size: int) -> tuple[list[float], float]:
        """Client-side latencies of `size` requests and the server's CPU seconds per request over them."""
        latencies, cpu = [], self.cpu()
        for _ in range(size):
            started = time.perf_counter()
            response = self.client.get(self.base + path, headers=self.headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or (expect and len(response.json().get("entry", [])) != expect):
                raise SystemExit(f"{path}: unexpected answer {response.status_code} {response.text[:200]}")
        return latencies, (self.cpu() - cpu) / size

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


# Over HTTP the client and every server get CPUs of their own: left to the scheduler, a server that happened to
# share the client's core for a whole run was measured up to 25% slower than in the next run (2 cores).
CPUS = sorted(os.sched_getaffinity(0))
CLIENT_CPUS, SERVER_CPUS = ({CPUS[0]}, set(CPUS[1:])) if len(CPUS) > 1 else (set(), set())


def main_http(rounds: int) -> None:
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    directory = Path(tempfile.mkdtemp(prefix="bench-consent-audit-http"))
    configurations = {"bare": (False, False), "consent": (True, False), "consent+audit": (True, True)}
    servers: dict[str, Server] = {}
    try:
        for name, (consent, audit) in configurations.items():
            servers[name] = Server(directory, name.replace("+", "-"), consent, audit)
        workloads = {"read Observation/o7": ("/Observation/o7", 0),
                     f"search page of {PAGE}": (f"/Observation?subject=Patient/pa&_count={PAGE}", PAGE)}
        size = 20
        pinning = f", client on CPU {sorted(CLIENT_CPUS)}, servers on {sorted(SERVER_CPUS)}" if CLIENT_CPUS else ""
        print(f"consent + audit overhead over HTTP (uvicorn, 1 worker each, loopback, SQLite{pinning}), {rounds} "
              f"rounds; median latency (client) | median server CPU per request (batches of {size})")
        for workload, (path, expect) in workloads.items():
            for server in servers.values():
                server.batch(path, expect, size)  # warm up
            latencies: dict[str, list[float]] = {name: [] for name in servers}
            cpus: dict[str, list[float]] = {name: [] for name in servers}
            batches = max((rounds if expect == 0 else max(rounds // 5, 5)) // 4, 5)
            for _ in range(batches):
                for name, server in servers.items():
                    found, used = server.batch(path, expect, size)
                    latencies[name] += found
                    cpus[name].append(used)
            bare = statistics.median(latencies["bare"]), statistics.median(cpus["bare"])
            for name in servers:
                wall, cpu = statistics.median(latencies[name]), statistics.median(cpus[name])
                print(f"  {workload:<22} {name:<14} {wall * 1000:8.2f} ms x{wall / bare[0]:.2f}"
                      f"   | {cpu * 1000:8.2f} ms x{cpu / bare[1]:.2f}")
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    count = int(arguments[0]) if arguments else 100
    if "--http" in sys.argv:
        os.environ.setdefault("ZCC_AUTH_KEY_DIR", tempfile.mkdtemp(prefix="bench-keys"))
        os.environ.setdefault("ZCC_AUDIT_KEY_DIR", os.environ["ZCC_AUTH_KEY_DIR"])
        main_http(count)
    else:
        main(count)
