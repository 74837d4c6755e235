"""Send an OperationOutcome straight from ASGI middleware (which runs outside the FHIR endpoint's renderer)."""

from __future__ import annotations

from starlette.types import Send

from conformance import fhirjson
from gateway.fhir.errors import Issue, operation_outcome

FHIR_JSON = b"application/fhir+json; charset=utf-8"


async def send_outcome(send: Send, status: int, code: str, diagnostics: str,
                       headers: dict[str, str] | None = None) -> None:
    body = fhirjson.dumps(operation_outcome([Issue("error", code, diagnostics)]))
    raw_headers = [(b"content-type", FHIR_JSON), (b"content-length", str(len(body)).encode())]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
