"""Overhead of the consent and audit stages: a single read and a 200-resource search page, over HTTP in-process
(TestClient, real SMART tokens), with both stages off, consent only, and consent + audit. Prints medians and the
ratio to the bare run (target: <= 1.5x). Run: `.venv/bin/python bench/consent_audit.py [rounds]`.

The three gateways use separate SQLite databases with the same data: patient `pa` with an active zcc contact and
200 Observations. Requests are interleaved round-robin so that machine noise hits every configuration alike.
Besides wall-clock time it reports the process CPU time per request (all threads: the test client's, the event
loop's and the worker thread's), which a machine shared with other jobs inflates far less than wall-clock time.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey, fetch_token
from gateway.settings import Settings

PAGE = 200


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


def gateway(directory: Path, name: str, consent: bool, audit: bool) -> tuple[TestClient, dict[str, str]]:
    settings = Settings(database_url=f"sqlite:///{directory / name}.db", base_url="http://testserver/fhir",
                        consent=consent, audit=audit, validation="off")
    services = build_services(settings)
    with services.store.write() as connection:
        for body in population():
            services.store.save(connection, body, body["id"])
    key = ClientKey.generate("EC")
    ClientRegistry(services.store.engine).add(
        ClientRegistration("bench", "00001111", "N6", "system/*.rs", ("triagist",), ("TREAT",), jwks=key.public_jwks()),
        actor="bench",
    )
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
