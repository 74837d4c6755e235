"""Migration 0009 on SQLite and PostgreSQL: the events' patient rows survive as (patient, seq) primary key rows (on
SQLite in a WITHOUT ROWID table), the index on `recorded` is gone, the patient access log and the retention purge
work on the new schema, and the downgrade gives the old schema back with the rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text

from gateway.audit.keys import load_checkpoint_key
from gateway.audit.log import AuditLog
from gateway.audit.retention import purge_before
from tests.migrations import fresh_engine, migrate


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    yield from fresh_engine(request, tmp_path, "migrate0009")


def _append(engine: Engine, log: AuditLog, name: str, recorded: str, *patients: str) -> None:
    with engine.begin() as connection:
        log.append(connection, {"resourceType": "AuditEvent", "id": name, "outcome": "0", "recorded": recorded},
                   "PatientRead", patients, "c1")


def _patient_rows(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT patient, seq FROM audit_event_patient ORDER BY patient, seq"))
        return [(row.patient, row.seq) for row in rows]


def test_patient_rows_move_to_a_primary_key_and_the_recorded_index_goes(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    migrate(engine, "upgrade", "0008")
    log = AuditLog()
    _append(engine, log, "old", "2019-01-01T00:00:00.000000+00:00", "p1", "p2")
    _append(engine, log, "new", "2026-01-01T00:00:00.000000+00:00", "p1")
    before = _patient_rows(engine)
    assert before == [("p1", 1), ("p1", 2), ("p2", 1)]

    migrate(engine, "upgrade", "0009")
    assert _patient_rows(engine) == before
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("audit_event_patient")["constrained_columns"] == ["patient", "seq"]
    assert inspector.get_indexes("audit_event_patient") == []
    assert "ix_audit_event_recorded" not in {index["name"] for index in inspector.get_indexes("audit_event")}
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            ddl = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'audit_event_patient'")).scalar()
        assert "WITHOUT ROWID" in ddl

    _append(engine, log, "newer", "2026-02-01T00:00:00.000000+00:00", "p2", "p2")  # appends on the new schema
    with engine.connect() as connection:
        assert [event["id"] for event in log.events_for_patient(connection, "p2")] == ["old", "newer"]
        assert log.search(connection, ["p1"], since="2025-01-01").events[0]["id"] == "new"
    key = load_checkpoint_key(tmp_path / "keys")
    with engine.begin() as connection:  # the retention purge finds the expired prefix without the index
        result = purge_before(connection, log, datetime(2020, 1, 1, tzinfo=UTC), key.sign, key.key_id, key.check,
                              "2026-03-01T00:00:00.000000+00:00")
    assert result.removed == 1
    assert _patient_rows(engine) == [("p1", 2), ("p2", 3)]
    with engine.connect() as connection:
        assert log.verify(connection, key.check).ok

    migrate(engine, "downgrade", "0008")
    assert _patient_rows(engine) == [("p1", 2), ("p2", 3)]
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("audit_event_patient")["constrained_columns"] == []
    assert {index["name"] for index in inspector.get_indexes("audit_event_patient")} == {
        "ix_audit_event_patient_patient"}
    assert "ix_audit_event_recorded" in {index["name"] for index in inspector.get_indexes("audit_event")}
