"""$summary latency and throughput: one patient with 500 resources from four sources (HAP, RAV, VVT, ggz tags,
with Provenance), consent and audit on, real token, in-process (TestClient). Prints p50/p95, req/s, the CPU time
this process spent per request (less sensitive to a loaded box than wall time) and the load average.

"warm": the patient's record is in the summary's record cache (checked against the database on every request);
"cold": the cache is off, every request reads and parses the compartment.

    .venv/bin/python bench/summary.py [--requests 200] [--backends sqlite,postgres] [--modes warm,cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.testclient import TestClient  # noqa: E402

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
    args = parser.parse_args()
    modes = args.modes.split(",")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            measure(f"sqlite:///{tempfile.mkdtemp()}/bench.db", args.requests, modes)
            continue
        from tests.pg import fresh_database, start_temporary_postgres  # the tests' throw-away cluster

        server = start_temporary_postgres()
        try:
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


if __name__ == "__main__":
    main()
