"""The HTTP boundary of the FHIR API: one route for every `/fhir/...` URL. It turns an HTTP request into an
Interaction (limits, content negotiation, parsing), hands it to the pipeline, and renders the Result.
Every error leaves here as an OperationOutcome; no stack trace ever does."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from gateway.fhir import formats
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope, Services
from gateway.fhir.elements import SummaryElements, apply_elements, apply_summary
from gateway.fhir.errors import FhirError, operation_outcome
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.urls import interaction_for
from gateway.store.availability import RETRY_AFTER_SECONDS, unavailable_reason

log = logging.getLogger("gateway.fhir")

_BODY_METHODS = {"POST", "PUT", "PATCH"}
_LOOP_KINDS = frozenset({kinds.READ, kinds.VREAD, kinds.SEARCH_TYPE})


class FhirPathConvertor(PathConvertor):
    """`{path:fhirpath}`: like `path`, but also across line breaks, so that a `%0A` in a URL still reaches the FHIR
    endpoint (and gets its OperationOutcome) instead of the framework's JSON 404 (found by schemathesis)."""

    regex = "(?s:.*)"


register_url_convertor("fhirpath", FhirPathConvertor())
_FORM = "application/x-www-form-urlencoded"


class FhirEndpoint:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.summary = SummaryElements(services.packages)

    async def handle(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        pretty = dict(params).get("_pretty") == "true"
        fmt = formats.JSON
        try:
            fmt = formats.negotiate(request.headers.get("accept"), dict(params).get("_format"))
            body = await self._read_body(request)
            interaction = self._interaction(request, params, body)
            scope = RequestScope(self.services, identity=getattr(request.state, "identity", None))
            if request.method == "GET" and self._on_loop(interaction):
                result = await self._dispatch_on_loop(scope, interaction)
            else:  # writes may wait for a database lock: keep the event loop free
                result = await run_in_threadpool(self.services.pipeline.dispatch, scope, interaction)
            return self._render(result, interaction, fmt, pretty)
        except FhirError as error:
            return self._outcome_response(error.status, error.outcome(), fmt, pretty, error.headers)
        except Exception as error:  # the one place where unexpected failures become a 500 OperationOutcome
            reason = unavailable_reason(error)
            if reason is not None:  # the database is down, locked or full: say so, fast, and when to retry
                log.warning("database unavailable on %s %s: %s", request.method, request.url.path, error)
                outcome = operation_outcome_text("transient", f"{reason}; nothing was changed, retry later")
                return self._outcome_response(503, outcome, fmt, pretty, {"Retry-After": str(RETRY_AFTER_SECONDS)})
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            outcome = operation_outcome_text("exception", "internal server error; the incident was logged")
            return self._outcome_response(500, outcome, fmt, pretty, {})

    def _on_loop(self, interaction: Interaction) -> bool:
        """Reads are short: on the loop they skip a thread hand-off (~0.3 ms of CPU per request, measured). With
        the audit on, every read also writes, and a write waiting for the database lock would stall the whole
        worker (> 1 s of loop lag behind a 0.5 s writer; bench/audit_loop_stall.py): so only reads, vreads and
        type searches on SQLite, whose audit append is made there only when it needs no waiting (else it is left
        for a worker thread: `RequestScope.deferred`)."""
        if not self.services.settings.audit:
            return True
        return interaction.kind in _LOOP_KINDS and self.services.store.engine.dialect.name == "sqlite"

    async def _dispatch_on_loop(self, scope: RequestScope, interaction: Interaction) -> Result:
        scope.on_event_loop = True
        try:
            result = self.services.pipeline.dispatch(scope, interaction)
        except Exception:
            if scope.deferred:  # a refusal is audited too, before it is answered (the audit's failure wins)
                await run_in_threadpool(scope.run_deferred)
            raise
        if scope.deferred:
            await run_in_threadpool(scope.run_deferred)
        return result

    async def _read_body(self, request: Request) -> bytes:
        if request.method not in _BODY_METHODS:
            return b""
        limit = self.services.settings.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FhirError(413, "too-costly", f"the body ({declared} bytes) exceeds the limit of {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FhirError(413, "too-costly", f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _interaction(self, request: Request, params: list[tuple[str, str]], body: bytes) -> Interaction:
        path = request.path_params.get("path", "")
        content_type = request.headers.get("content-type", "")
        resource: dict[str, Any] | None = None
        is_search_post = request.method == "POST" and (path == "_search" or path.endswith("/_search"))
        if is_search_post:
            if body.strip():
                if content_type.split(";")[0].strip().lower() != _FORM:
                    raise FhirError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded")
                params = params + parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif request.method in _BODY_METHODS:
            resource = formats.parse_body(body, content_type, self.services.type_model)
        headers = {key.lower(): value for key, value in request.headers.items()}
        return interaction_for(request.method, path, params, self.services.resource_types, headers, resource)

    def _render(self, result: Result, interaction: Interaction, fmt: str, pretty: bool) -> Response:
        headers = dict(result.headers)
        if result.status in {204, 304}:
            return Response(status_code=result.status, headers=headers)
        params = dict(interaction.params)
        subset = interaction.kind in {"read", "vread"} and ("_summary" in params or "_elements" in params)
        if result.stored is not None and result.resource is None and not subset:
            assert result.stored.body is not None
            content = formats.json_bytes_to(result.stored.body, fmt, pretty, self.services.type_model)
        else:
            resource = result.body_resource()
            if resource is None:
                return Response(status_code=result.status, headers=headers)
            if subset:
                if "_elements" in params:
                    resource = apply_elements(resource, params["_elements"].split(","))
                else:
                    resource = apply_summary(resource, params["_summary"], self.summary)
            content = formats.serialize(resource, fmt, pretty, self.services.type_model)
        return Response(content, status_code=result.status, headers=headers, media_type=_media(fmt))

    def _outcome_response(
        self, status: int, outcome: dict[str, Any], fmt: str, pretty: bool, headers: dict[str, str]
    ) -> Response:
        try:
            content = formats.serialize(outcome, fmt, pretty, self.services.type_model)
        except Exception:  # XML conversion must never hide the error itself
            fmt = formats.JSON
            content = formats.serialize(outcome, fmt, pretty)
        return Response(content, status_code=status, headers=headers, media_type=_media(fmt))


def operation_outcome_text(code: str, diagnostics: str) -> dict[str, Any]:
    from gateway.fhir.errors import Issue

    return operation_outcome([Issue("error", code, diagnostics)])


def _media(fmt: str) -> str:
    return f"{fmt}; charset=utf-8"
