"""SQLite faults: the database locked by another process, and a full disk. Both end in a fast 503
OperationOutcome with Retry-After, acknowledged writes stay, the refused one is absent, and the file passes
`PRAGMA integrity_check` afterwards."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.settings import Settings
from tests.auth.fixtures import GatewayTokenAuth
from tests.ingest.messages import episode_message
from tests.reliability.conftest import FHIR_JSON, assert_outcome

HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def gateway(database: Path, timeout: float = 1.0) -> tuple[TestClient, object]:
    settings = Settings(database_url=f"sqlite:///{database}", base_url="http://testserver/fhir", consent=False,
                        database_timeout=timeout)
    services = build_services(settings)
    app = create_app(services=services)
    client = TestClient(app, raise_server_exceptions=False)
    client.auth = GatewayTokenAuth(app, settings.database_url)
    return client, services


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def create_patient(client: TestClient, family: str):  # type: ignore[no-untyped-def]
    return client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": family}]},
                       headers=FHIR_JSON)


def test_database_locked_by_another_process(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    client, _ = gateway(database, timeout=1.0)
    with client:
        kept = create_patient(client, "before-lock")
        assert kept.status_code == 201
        client.get("/fhir/Patient", headers=FHIR_JSON)  # a token in hand before the lock is taken
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(database), "4"], stdout=subprocess.PIPE)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
            started = time.monotonic()
            refused = create_patient(client, "during-lock")
            elapsed = time.monotonic() - started
            outcome = assert_outcome(refused, 503, "transient")
            assert "locked" in outcome["issue"][0]["diagnostics"]
            assert refused.headers["retry-after"].isdigit()
            assert elapsed < 3.5, f"the lock wait was not bounded by the timeout ({elapsed:.1f} s)"
            # every read is audited, and the audit event cannot be written either: fail closed, no data
            assert_outcome(client.get("/fhir/Patient", headers=FHIR_JSON), 503, "transient")
        finally:
            holder.wait(timeout=10)
        assert create_patient(client, "after-lock").status_code == 201
        found = client.get("/fhir/Patient", params={"family": "during-lock"}, headers=FHIR_JSON).json()
        assert found["total"] == 0
    assert integrity(database) == "ok"


def fill_limit(services: object, spare_pages: int) -> None:
    """Cap the database at its current size plus `spare_pages` on every connection: SQLite then answers
    SQLITE_FULL ("database or disk is full") exactly as on a full disk."""
    engine = services.store.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + spare_pages}")

    engine.dispose()
    services.store._readers = type(services.store._readers)()  # type: ignore[attr-defined]


def test_database_full(tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    client, services = gateway(database)
    with client:
        client.get("/fhir/Patient", headers=FHIR_JSON)
        fill_limit(services, spare_pages=60)
        acknowledged, refused = [], None
        for n in range(200):
            response = client.post("/fhir/Patient", headers=FHIR_JSON, json={
                "resourceType": "Patient", "name": [{"family": f"full-{n}", "given": ["x" * 20_000]}]})
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
                continue
            refused = response
            break
        assert refused is not None, "the database never filled up"
        outcome = assert_outcome(refused, 503, "transient")
        assert "full" in outcome["issue"][0]["diagnostics"]
        ingest = client.post("/ingest/hap", content=episode_message(message_id="disk-full"),
                             headers={"Content-Type": "application/xml"})
        if ingest.status_code == 503:  # refused before the raw message could be kept: the sender retries
            assert_outcome(ingest, 503, "transient")
        else:  # the raw message was kept, its transaction refused: kept as a rejected record for a retry
            assert_outcome(ingest, 422)
            record = client.app.state.ingest.records.get(ingest.json()["id"])
            assert record is not None and record.status == "rejected"
        for resource_id in acknowledged:
            assert client.get(f"/fhir/Patient/{resource_id}", headers=FHIR_JSON).status_code == 200
    assert integrity(database) == "ok"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs: a real ENOSPC, including for the WAL file (needs root; skipped otherwise)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_real_disk_full(small_disk: Path, tmp_path: Path) -> None:
    """A write on a full disk is refused (503, nothing half-written); once there is room again, writes are taken
    and the acknowledged ones served without a restart. (On the full disk itself a read may be refused too: it
    cannot be audited, and whether its audit record still fits in what the refused write left depends on a few
    kilobytes.)"""
    database = small_disk / "gateway.db"
    room = small_disk / "room"  # taken now, given back after the disk has filled up
    room.write_bytes(b"\0" * 512 * 1024)
    client, _ = gateway(database)
    with client:
        acknowledged, refused = [], None
        for n in range(400):
            response = client.post("/fhir/Patient", headers=FHIR_JSON, json={
                "resourceType": "Patient", "name": [{"family": f"disk-{n}", "given": ["y" * 20_000]}]})
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
                continue
            refused = response
            break
        assert refused is not None, "the disk never filled up"
        assert_outcome(refused, 503, "transient")
        read = client.get(f"/fhir/Patient/{acknowledged[-1]}", headers=FHIR_JSON)
        if read.status_code != 200:  # refused only because it could not be audited, and said so
            assert "could not be audited" in assert_outcome(read, 503, "transient")["issue"][0]["diagnostics"]
        room.unlink()
        again = client.post("/fhir/Patient", headers=FHIR_JSON, json={"resourceType": "Patient", "active": True})
        assert again.status_code == 201, again.text  # writes work again, without a restart
        acknowledged.append(again.json()["id"])
        for resource_id in acknowledged[-5:]:
            assert client.get(f"/fhir/Patient/{resource_id}", headers=FHIR_JSON).status_code == 200
    copy = tmp_path / "copy.db"  # check a copy on a disk with room (the checker itself needs space)
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    assert integrity(copy) == "ok"
    with sqlite3.connect(copy) as connection:
        stored = connection.execute("SELECT count(*) FROM resource WHERE type = 'Patient'").fetchone()[0]
    assert stored >= len(acknowledged)
