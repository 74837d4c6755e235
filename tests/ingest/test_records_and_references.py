"""The ingestion's own hot spots: the duplicate lookups stay on their index as the records pile up, and one walk
resolves a message's placeholder references and says whether any is left."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import sqlite

from gateway.ingest.bundle import dangling_references, resolve_references
from gateway.ingest.records import _SAME_BYTES, _SAME_MESSAGE_ID, ACCEPTED, DUPLICATE, IngestRecord, IngestRecords
from gateway.ingest.schema import create_ingest_tables
from gateway.store.engine import create_database_engine


def _record(records: IngestRecords, number: int, status: str, message_id: str) -> IngestRecord:
    record = IngestRecord(id=f"r{number}", source="hap", sha256=f"sha-{message_id}", size=1,
                          received_at=f"2026-01-01T00:00:{number:02d}Z", status="received")
    records.add_received(record, b"raw")
    record.status, record.message_id = status, message_id
    records.finish(record)
    return record


def test_duplicate_lookups_use_their_index_and_find_the_first_accepted(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'records.db'}")
    create_ingest_tables(engine)
    records = IngestRecords(engine)
    for number in range(20):
        _record(records, number, ACCEPTED, f"m{number}")
    _record(records, 30, DUPLICATE, "m5")
    _record(records, 31, ACCEPTED, "m5")  # the same message id accepted again later (another sender's bytes)
    assert records.accepted_original("hap", None, "m5", exclude="r99") == "r5"
    assert records.accepted_original("hap", None, "m5", exclude="r5") == "r31"
    assert records.accepted_original("hap", "sha-m7", None, exclude="r99") == "r7"
    assert records.accepted_original("hap", "sha-m7", None, exclude="r7") is None
    assert records.accepted_original("rav", "sha-m7", "m7", exclude="r99") is None
    # both keys in one statement, saying which one is the same
    assert records.accepted_match("hap", "sha-m7", "m7", exclude="r99") == ("r7", "sha256")
    assert records.accepted_match("hap", "sha-other", "m7", exclude="r99") == ("r7", "message_id")
    assert records.accepted_match("hap", "sha-m7", "m8", exclude="r99") == ("r7", "sha256")
    with engine.connect() as connection:  # a status condition made SQLite walk every accepted record instead
        for statement, index in ((_SAME_BYTES, "ix_ingest_message_source_sha"),
                                 (_SAME_MESSAGE_ID, "ix_ingest_message_source_msgid")):
            sql = str(statement.compile(dialect=sqlite.dialect()))
            plan = " ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("hap", "x")))
            assert f"USING INDEX {index}" in plan, plan
    engine.dispose()


def test_one_walk_resolves_placeholders_and_reports_what_is_left() -> None:
    urls = {"urn:uuid:p": "Patient/1", "urn:uuid:o": "Organization/2"}
    resolved = {"resourceType": "Encounter", "subject": {"reference": "urn:uuid:p"},
                "participant": [{"individual": {"reference": "urn:uuid:o", "display": "urn:uuid:p"}}],
                "length": {"value": 3}, "extension": [{"valueBoolean": True}, "urn:uuid:p"]}
    assert resolve_references(resolved, urls) is False
    assert resolved["subject"] == {"reference": "Patient/1"}
    assert resolved["participant"][0]["individual"] == {"reference": "Organization/2", "display": "urn:uuid:p"}
    left = {"resourceType": "Encounter", "partOf": {"reference": "urn:uuid:missing"},
            "subject": {"reference": "urn:uuid:p"}}
    assert resolve_references(left, urls) is True
    assert left["subject"] == {"reference": "Patient/1"}
    issues = dangling_references([resolved, left])
    assert [issue.expression for issue in issues] == [["Bundle.entry[1].resource.partOf"]]
