"""Exception handler for the non-FHIR routes (ingestion, capacity feeds, auth): a database that is down,
locked or full becomes `503` + `Retry-After` with an OperationOutcome instead of a bare 500. (The FHIR
endpoint renders the same answer itself, in the negotiated format.)"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from conformance import fhirjson
from gateway.fhir.errors import Issue, operation_outcome
from gateway.store.availability import RETRY_AFTER_SECONDS, unavailable_reason

log = logging.getLogger("gateway.limits")


async def database_unavailable(request: Request, error: Exception) -> Response:
    reason = unavailable_reason(error)
    if reason is None:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        status, issue = 500, Issue("error", "exception", "internal server error; the incident was logged")
        headers = {}
    else:
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, error)
        status, issue = 503, Issue("error", "transient", f"{reason}; retry later")
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return Response(fhirjson.dumps(operation_outcome([issue])), status, headers=headers,
                    media_type="application/fhir+json")
