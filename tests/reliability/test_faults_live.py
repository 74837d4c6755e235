"""Faults on live gateway processes with PostgreSQL: `kill -9` in the middle of transactions and ingestion,
and the PostgreSQL server restarted under load.

Verdicts: every acknowledged write is present afterwards; every transaction is all-or-nothing; every raw
ingestion record is kept; while the database is down requests fail fast with a 503 OperationOutcome; once it
is back the gateway serves again without a restart."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.ingest.schema import ingest_message
from gateway.store.engine import create_database_engine
from tests.auth.fixtures import obtain_auth_header
from tests.ingest.messages import episode_message
from tests.pg import PostgresUnavailableError, TemporaryPostgres, fresh_database, start_temporary_postgres
from tests.reliability.live import gateway_cluster

pytestmark = pytest.mark.postgres
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
TAG_SYSTEM = "urn:test:kill"


def transaction(tag: str) -> dict:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient_url, "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "identifier": [{"system": TAG_SYSTEM, "value": tag}]}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": tag},
                      "identifier": [{"system": TAG_SYSTEM, "value": tag}],
                      "subject": {"reference": patient_url}}},
    ]}


class Load:
    """Writers hammering one gateway until `stop`; remembers what was sent and what was acknowledged."""

    def __init__(self, base: str, origin: str, headers: dict[str, str]) -> None:
        self.base, self.origin, self.headers = base, origin, headers
        self.stop = threading.Event()
        self.sent_tags: list[str] = []
        self.acknowledged_tags: list[str] = []
        self.acknowledged_records: list[str] = []
        self.threads = [threading.Thread(target=self._transactions) for _ in range(2)]
        self.threads.append(threading.Thread(target=self._ingestion))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _transactions(self) -> None:
        with httpx.Client(headers=self.headers, timeout=10) as http:
            while not self.stop.is_set():
                tag = uuid.uuid4().hex
                self.sent_tags.append(tag)
                try:
                    response = http.post(self.base, json=transaction(tag))
                except httpx.HTTPError:
                    continue
                if response.status_code == 200:
                    self.acknowledged_tags.append(tag)

    def _ingestion(self) -> None:
        headers = {"Authorization": self.headers["Authorization"], "Content-Type": "application/xml"}
        with httpx.Client(headers=headers, timeout=30) as http:
            while not self.stop.is_set():
                message_id = uuid.uuid4().hex
                raw = episode_message(message_id=message_id, episode_id=f"ep-{message_id}")
                try:
                    response = http.post(f"{self.origin}/ingest/hap", content=raw)
                except httpx.HTTPError:
                    continue
                if response.status_code == 201:
                    self.acknowledged_records.append(response.json()["id"])


def test_kill_minus_nine_loses_no_acknowledged_write(pg_url: str, tmp_path: Path) -> None:
    database_url = fresh_database(pg_url, "kill")
    first, second = gateway_cluster(2, database_url, tmp_path)
    first.start()
    headers = {**FHIR_JSON, **obtain_auth_header(first.origin, database_url)}
    try:
        with Load(first.base, first.origin, headers) as load:
            deadline = time.monotonic() + 20
            while (len(load.acknowledged_tags) < 10 or not load.acknowledged_records) and time.monotonic() < deadline:
                time.sleep(0.1)
            first.kill()  # mid-flight: the writers have requests outstanding
        assert len(load.acknowledged_tags) >= 10 and load.acknowledged_records
        second.start()
        with httpx.Client(headers=headers, timeout=30) as http:
            for tag in load.sent_tags:
                patients = http.get(f"{second.base}/Patient", params={"identifier": f"{TAG_SYSTEM}|{tag}"}).json()
                observations = http.get(f"{second.base}/Observation",
                                        params={"identifier": f"{TAG_SYSTEM}|{tag}"}).json()
                expected = 1 if tag in load.acknowledged_tags else patients["total"]
                assert patients["total"] == observations["total"] == expected, tag  # all or nothing
                assert expected in {0, 1}
            for record_id in load.acknowledged_records:
                record = http.get(f"{second.origin}/ingest/{record_id}").json()
                assert record["status"] == "accepted"
                for location in record["resources"]:
                    assert http.get(f"{second.base}/{location.split('/_history')[0]}").status_code == 200
            provenances = http.get(f"{second.base}/Provenance", params={"_count": "1000"}).json()
            for entry in provenances.get("entry", []):
                for target in entry["resource"]["target"]:
                    assert http.get(f"{second.base}/{target['reference']}").status_code == 200
        engine = create_database_engine(database_url)
        with engine.connect() as connection:
            rows = connection.execute(select(ingest_message.c.status, ingest_message.c.raw)).all()
        engine.dispose()
        assert len(rows) >= len(load.acknowledged_records)
        assert all(raw for _, raw in rows)  # every received message kept, whatever became of it
    finally:
        first.kill()
        second.stop()


@pytest.fixture
def own_postgres() -> Iterator[TemporaryPostgres]:
    """A PostgreSQL server of this test alone: it is stopped and started again."""
    try:
        server = start_temporary_postgres()
    except PostgresUnavailableError as error:
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


def pg_ctl(server: TemporaryPostgres, action: str) -> None:
    options = (f"-p {server.port} -k {server.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off")
    command = [str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-w", "-t", "30"]
    command += ["-m", "fast", "stop"] if action == "stop" else ["-o", options, "-l",
                                                                 str(server.directory / "server.log"), "start"]
    prefix = ["runuser", "-u", server.user, "--"] if server.user else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, cwd=server.directory)


def test_postgres_restart_under_load(own_postgres: TemporaryPostgres, tmp_path: Path) -> None:
    database_url = fresh_database(own_postgres.url, "restart")
    (instance,) = gateway_cluster(1, database_url, tmp_path, ZCC_DB_TIMEOUT="3")
    instance.start()
    headers = {**FHIR_JSON, **obtain_auth_header(instance.origin, database_url)}
    http = httpx.Client(headers=headers, timeout=20)
    try:
        before = http.post(f"{instance.base}/Patient", json={"resourceType": "Patient", "gender": "male"})
        assert before.status_code == 201
        pg_ctl(own_postgres, "stop")
        down: list[tuple[int, float, dict]] = []
        for n in range(6):
            started = time.monotonic()
            response = (http.get(f"{instance.base}/Patient/{before.json()['id']}") if n % 2 else
                        http.post(f"{instance.base}/Patient", json={"resourceType": "Patient"}))
            down.append((response.status_code, time.monotonic() - started, response.json()))
        for status, elapsed, body in down:
            assert status == 503, down
            assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "transient"
            assert elapsed < 5, f"a request took {elapsed:.1f} s while the database was down"
        pg_ctl(own_postgres, "start")
        deadline, recovered = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            response = http.post(f"{instance.base}/Patient", json={"resourceType": "Patient", "gender": "female"})
            if response.status_code == 201:
                recovered = response
                break
            time.sleep(0.5)
        assert recovered is not None, "the gateway did not reconnect by itself"
        for created in (before, recovered):
            assert http.get(f"{instance.base}/Patient/{created.json()['id']}").status_code == 200
        assert instance.process is not None and instance.process.poll() is None  # never restarted
    finally:
        http.close()
        instance.stop()
