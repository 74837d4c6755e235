"""Acceptance: every HAP reference message ingests in strict mode with zero validation errors, and ingesting
them all again creates nothing new."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest.actor import cli_identity
from gateway.ingest.service import IngestService
from tests.ingest.conftest import KETENZORG, SUMMARY
from tests.ingest.test_ingest_pipeline import stored_count
from tests.reference import requires_reference

MESSAGES = sorted(KETENZORG.glob("*.xml")) + [SUMMARY]


@requires_reference
def test_all_reference_messages_ingest_strict_without_errors(service: IngestService) -> None:
    records = {}
    for path in MESSAGES:
        result = service.ingest("hap", Path(path).read_bytes(), cli_identity())
        assert result.record.status == "accepted", (path.name, result.record.outcome)
        errors = [i for i in (result.record.outcome or {}).get("issue", []) if i["severity"] in {"error", "fatal"}]
        assert errors == [], path.name
        records[path.name] = result.record
    assert len(records["QUPC_IN990002NL_01.xml"].resources) == 116
    count = stored_count(service)
    for path in MESSAGES:
        assert service.ingest("hap", Path(path).read_bytes(), cli_identity()).record.status == "duplicate"
    assert stored_count(service) == count
