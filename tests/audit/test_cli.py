"""`zcc-gateway audit verify | report | checkpoint | purge` on databases a real gateway wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from gateway.audit.jcs import canonicalize
from gateway.audit.log import AuditLog
from gateway.audit.schema import audit_checkpoint, audit_event
from gateway.cli import app
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from tests.consent.http_gateway import AMBULANCE, BSN_A, Gateway, build_gateway

runner = CliRunner()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as patch:
        for gateway in build_gateway(tmp_path_factory, patch):
            assert gateway.get("Observation/oa1").status_code == 200
            refused = gateway.get("Observation/oa1", caller=AMBULANCE, **{"X-Zcc-Flow": "holder"})
            assert refused.status_code == 404  # no consent for the ambulance service at this data holder
            assert gateway.get("Observation?subject=Patient/pb").status_code == 200
            yield gateway


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, result.output


def test_verify_reports_an_intact_chain(gateway: Gateway) -> None:
    code, output = cli("verify", "--database", gateway.services.settings.database_url)
    assert code == 0 and "audit chain intact" in output


def test_tampering_with_one_event_is_named_by_verify(gateway: Gateway) -> None:
    database = gateway.services.settings.database_url
    with gateway.services.store.write() as connection:
        seq, event_id, body = connection.execute(
            select(audit_event.c.seq, audit_event.c.event_id, audit_event.c.body).order_by(audit_event.c.seq)
            .offset(2).limit(1)).one()
        tampered = json.loads(body)
        tampered["outcome"] = "0" if tampered["outcome"] != "0" else "4"
        forged = canonicalize(tampered)  # a careful forger keeps the canonical form
        connection.execute(update(audit_event).where(audit_event.c.seq == seq).values(body=forged))
    try:
        code, output = cli("verify", "--database", database)
    finally:
        with gateway.services.store.write() as connection:
            connection.execute(update(audit_event).where(audit_event.c.seq == seq).values(body=body))
    assert code == 1
    assert f"seq {seq}" in output and event_id in output and "does not match" in output
    assert cli("verify", "--database", database)[0] == 0


def test_checkpoints_are_signed_and_checked(gateway: Gateway) -> None:
    database = gateway.services.settings.database_url
    code, output = cli("checkpoint", "--database", database)
    assert code == 0 and "checkpoint signed" in output
    code, output = cli("verify", "--database", database)
    assert code == 0 and "signed checkpoint(s) verified" in output
    with gateway.services.store.write() as connection:
        last = connection.execute(select(audit_checkpoint).order_by(audit_checkpoint.c.id.desc()).limit(1)).one()
        forged = bytes(last.signature[:-1]) + bytes([last.signature[-1] ^ 1])
        connection.execute(update(audit_checkpoint).where(audit_checkpoint.c.id == last.id).values(signature=forged))
    try:
        code, output = cli("verify", "--database", database)
    finally:
        with gateway.services.store.write() as connection:
            connection.execute(
                update(audit_checkpoint).where(audit_checkpoint.c.id == last.id).values(signature=last.signature))
    assert code == 1 and "signature is not valid" in output


def test_report_by_bsn_says_who_which_organisation_when_and_why(gateway: Gateway) -> None:
    code, output = cli("report", "--bsn", BSN_A, "--database", gateway.services.settings.database_url)
    assert code == 0
    lines = [line for line in output.splitlines() if "URA" in line]
    assert any("URA 00001111" in line and "purpose TREAT" in line and "allowed" in line for line in lines)
    assert any("URA 00003333" in line and "refused" in line for line in lines)
    assert f"BSN {BSN_A} (Patient/pa)" in output


def test_report_refuses_bad_or_unknown_bsn(gateway: Gateway) -> None:
    database = gateway.services.settings.database_url
    assert cli("report", "--bsn", "123456789", "--database", database)[0] == 2  # fails the eleven test
    assert cli("report", "--bsn", "111222333", "--database", database)[0] == 1  # valid but unknown here


# -- retention ----------------------------------------------------------------------------------------------------


@pytest.fixture
def aged_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A chain of 5 events from 2015 followed by 3 from now."""
    monkeypatch.setenv("ZCC_AUDIT_KEY_DIR", str(tmp_path / "keys"))
    url = f"sqlite:///{tmp_path / 'aged.db'}"
    engine = create_database_engine(url)
    upgrade(engine)
    log = AuditLog()
    now = datetime.now(UTC)
    moments = [datetime(2015, 3, 1, tzinfo=UTC) + timedelta(days=n) for n in range(5)] + [now] * 3
    for n, moment in enumerate(moments):
        with engine.begin() as connection:
            event = {"resourceType": "AuditEvent", "id": f"e{n}", "outcome": "0",
                     "recorded": moment.isoformat(timespec="microseconds")}
            log.append(connection, event, "PatientRead", ["p1"], "app")
    engine.dispose()
    return url


def test_purge_removes_expired_events_and_keeps_the_chain_verifiable(aged_database: str) -> None:
    code, output = cli("purge", "--database", aged_database)
    assert code == 0 and "removed 5 event(s)" in output
    code, output = cli("verify", "--database", aged_database)
    assert code == 0 and "8 event(s)" in output  # counted from the signed anchor
    engine = create_database_engine(aged_database)
    with engine.connect() as connection:
        remaining = [row.event_id for row in connection.execute(select(audit_event.c.event_id))]
    assert remaining == ["e5", "e6", "e7"]
    assert cli("purge", "--database", aged_database)[1].startswith("nothing recorded before")


def test_purge_anchor_cannot_be_forged(aged_database: str) -> None:
    assert cli("purge", "--database", aged_database)[0] == 0
    engine = create_database_engine(aged_database)
    with engine.begin() as connection:
        connection.execute(update(audit_checkpoint).values(count=4))  # pretend fewer events were removed
    code, output = cli("verify", "--database", aged_database)
    assert code == 1 and "BROKEN" in output


def test_purge_refuses_a_broken_chain(aged_database: str) -> None:
    engine = create_database_engine(aged_database)
    with engine.begin() as connection:
        connection.execute(update(audit_event).where(audit_event.c.event_id == "e1").values(body=b'{"forged":1}'))
    code, output = cli("purge", "--database", aged_database)
    assert code == 1 and "nothing removed" in output
    with engine.connect() as connection:
        assert len(connection.execute(select(audit_event.c.seq)).all()) == 8
