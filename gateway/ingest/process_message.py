"""`POST [base]/$process-message` (FHIR messaging, synchronous): a message Bundle is ingested exactly like
`POST /ingest/rav` — kept, translated, validated, written in one transaction — under the caller's identity.
Accepted (or already accepted) -> 200 with a response message (MessageHeader.response.code `ok`, pointing at
the ingestion record); rejected -> 422 with the OperationOutcome saying why (the record is kept)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from conformance import fhirjson
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError, Issue
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation
from gateway.ingest.actor import ingestion_identity
from gateway.ingest.records import ACCEPTED, DUPLICATE
from gateway.ingest.service import IngestService

DEFINITION = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
MESSAGE_SOURCE = "rav"  # the only source that sends FHIR R4 messages (Acute Zorg, event 145)


def process_message_operation(service: IngestService) -> Operation:
    def handler(scope: RequestScope, it: Interaction) -> Result:
        if it.method != "POST" or not isinstance(it.body, dict):
            raise FhirError(405, "not-supported", "$process-message is POST [base]/$process-message with a message "
                            "Bundle")
        if it.body.get("resourceType") != "Bundle" or it.body.get("type") != "message":
            raise FhirError(400, "structure", "$process-message takes a Bundle of type 'message'")
        raw = fhirjson.dumps(it.body)
        result = service.ingest(MESSAGE_SOURCE, raw, ingestion_identity(scope.identity))
        record = result.record
        record_url = f"{service.services.settings.base_url.removesuffix('/fhir')}/ingest/{record.id}"
        if record.status not in (ACCEPTED, DUPLICATE):
            issues = list(result.issues) or [Issue("error", "processing", "the message was not accepted")]
            raise FhirError(422, issues[0].code, issues[0].diagnostics, issues=issues)
        outcome = dict(result.outcome)
        outcome["issue"] = [{"severity": "information", "code": "informational",
                             "diagnostics": f"ingestion record {record_url} ({record.status})"}, *outcome["issue"]]
        body = _response_message(it.body, outcome, service.services.settings.base_url)
        return Result(200, resource=body, headers={"Location": record_url})

    return Operation(name="process-message", handler=handler, definition=DEFINITION, levels=frozenset({"system"}),
                     documentation="Accept an Acute Zorg FHIR R4 message (ambulance -> HAP referral, event 145).")


def _response_message(message: dict[str, Any], outcome: dict[str, Any], base_url: str) -> dict[str, Any]:
    header = next((e.get("resource") for e in message.get("entry", []) if isinstance(e, dict)), None) or {}
    outcome_url = f"urn:uuid:{uuid.uuid4()}"
    response_header: dict[str, Any] = {
        "resourceType": "MessageHeader", "id": str(uuid.uuid4()),
        "source": {"endpoint": base_url},
        "response": {"identifier": header.get("id", ""), "code": "ok", "details": {"reference": outcome_url}},
    }
    if header.get("eventCoding"):
        response_header["eventCoding"] = header["eventCoding"]
    if isinstance(header.get("source"), dict) and header["source"].get("endpoint"):
        response_header["destination"] = [{"endpoint": header["source"]["endpoint"]}]
    return {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "entry": [{"fullUrl": f"urn:uuid:{response_header['id']}", "resource": response_header},
                  {"fullUrl": outcome_url, "resource": outcome}],
    }
