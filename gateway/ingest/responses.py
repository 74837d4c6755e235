"""What POST /ingest/{source} answers: a transaction-response-like Bundle when accepted (first entry: the
ingestion record with its OperationOutcome), an OperationOutcome when rejected or duplicate."""

from __future__ import annotations

from typing import Any

from gateway.ingest.records import ACCEPTED, DUPLICATE
from gateway.ingest.service import IngestResult

STATUS = {ACCEPTED: 201, DUPLICATE: 200}


def http_status(result: IngestResult) -> int:
    return STATUS.get(result.record.status, 422)


def response_body(result: IngestResult, record_url: str) -> dict[str, Any]:
    record = result.record
    outcome = dict(result.outcome)
    outcome["id"] = record.id
    if record.status != ACCEPTED:
        return outcome
    entries = [{
        "fullUrl": record_url,
        "response": {"status": "201 Created", "location": record_url, "outcome": outcome},
    }]
    entries += [e for e in (result.response or {}).get("entry", []) if isinstance(e, dict)]
    return {"resourceType": "Bundle", "id": record.id, "type": "transaction-response", "entry": entries}
