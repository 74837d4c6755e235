"""HTTP entry points: `POST /ingest/{source}` (body as the source sends it) and `GET /ingest/{id}`.

The auth middleware protects `/ingest`; the caller's identity is what the transaction is written under (see
gateway.ingest.actor). A record may be read back by the client that submitted it and by administrators."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from conformance import fhirjson
from gateway.adapters.hl7v2.ack import ack_for_result
from gateway.adapters.hl7v2.framing import unframe
from gateway.fhir.context import Services
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.ingest.actor import ingestion_identity
from gateway.ingest.process_message import process_message_operation
from gateway.ingest.records import IngestRecords
from gateway.ingest.responses import http_status, response_body
from gateway.ingest.service import IngestService, UnknownSource

HARD_LIMIT = 64 * 1024 * 1024  # bodies above this are refused unread (413); below it, oversized ones are kept
FHIR_JSON = "application/fhir+json"
HL7V2_MEDIA_TYPE = "x-application/hl7-v2+er7"


def _outcome(status: int, code: str, diagnostics: str) -> Response:
    body = operation_outcome([Issue("error", code, diagnostics)])
    return Response(fhirjson.dumps(body), status, media_type=FHIR_JSON)


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(fhirjson.dumps(body), status, headers=headers, media_type=FHIR_JSON)


async def _read_body(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > HARD_LIMIT:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_router(service: IngestService) -> APIRouter:
    router = APIRouter(prefix="/ingest", tags=["ingest"])

    @router.post("/{source}")
    async def post_message(source: str, request: Request) -> Response:
        identity = getattr(request.state, "identity", None)
        if identity is None:
            return _outcome(401, "login", "ingestion needs an authenticated client")
        raw = await _read_body(request)
        if raw is None:
            return _outcome(413, "too-costly", f"the message exceeds {HARD_LIMIT} bytes and was not accepted")
        lenient = request.query_params.get("mode") == "lenient"
        try:
            result = await asyncio.to_thread(service.ingest, source, raw, ingestion_identity(identity), lenient)
        except UnknownSource as error:
            return _outcome(404, "not-found", str(error))
        except FhirError as error:  # a server-side failure (e.g. 503: the access could not be audited): retryable
            return _json(error.outcome(), error.status, error.headers)
        record_url = f"{str(request.base_url).rstrip('/')}/ingest/{result.record.id}"
        if HL7V2_MEDIA_TYPE in request.headers.get("accept", ""):  # an HL7v2 sender wants its ACK/NAK
            ack = ack_for_result(unframe(raw), result.record.status, result.record.outcome)
            return Response(ack, http_status(result), {"Location": record_url}, media_type=HL7V2_MEDIA_TYPE)
        return _json(response_body(result, record_url), http_status(result), {"Location": record_url})

    @router.get("/{record_id}")
    async def get_record(record_id: str, request: Request) -> Response:
        identity = getattr(request.state, "identity", None)
        record = await asyncio.to_thread(service.records.get, record_id)
        if record is None or not _may_read(identity, record.submitted_by):
            return _outcome(404, "not-found", f"ingestion record {record_id} is not known")
        return JSONResponse(record.as_json())

    return router


def _may_read(identity: Any, submitted_by: str | None) -> bool:
    if identity is None:
        return False
    return (identity.client_id == submitted_by or getattr(identity, "insecure_dev", False)
            or identity.role == "admin")


def register(app: FastAPI, services: Services) -> IngestService:
    """Called by the lead from `create_app`: mounts the /ingest routes on the app."""
    service = IngestService(services, IngestRecords(services.store.engine))
    services.pipeline.add_operation(process_message_operation(service))  # POST /fhir/$process-message
    app.include_router(build_router(service))
    app.state.ingest = service
    return service
