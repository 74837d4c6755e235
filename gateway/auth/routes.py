"""HTTP endpoints of the authorisation server: token, JWKS and SMART discovery."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.auth.client_cert import CertificateError, presented_chain
from gateway.auth.discovery import smart_configuration
from gateway.auth.errors import OAuthError
from gateway.auth.keys import SigningKeys
from gateway.auth.settings import AuthSettings
from gateway.auth.token_endpoint import TokenEndpoint

MAX_FORM_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"


def auth_router(endpoint: TokenEndpoint, keys: SigningKeys, settings: AuthSettings) -> APIRouter:
    """The router to include in the app; paths are absolute (`/auth/...`, `/.well-known/...`)."""
    router = APIRouter(tags=["auth"])

    @router.post("/auth/token")
    async def token(request: Request) -> JSONResponse:
        try:
            form = await _read_form(request)
            try:
                chain = presented_chain(request.scope, settings)
            except CertificateError as error:
                raise OAuthError("invalid_request", f"client certificate: {error}") from error
            issued = await run_in_threadpool(endpoint.handle, form, chain)
        except OAuthError as error:
            return JSONResponse(error.body(), status_code=error.status, headers=_NO_STORE)
        return JSONResponse(issued.response(), headers=_NO_STORE)

    @router.get("/auth/jwks")
    async def jwks() -> JSONResponse:
        return JSONResponse(keys.public_jwks(), headers={"Cache-Control": "public, max-age=60"})

    @router.get("/.well-known/smart-configuration")
    @router.get("/fhir/.well-known/smart-configuration")
    async def smart_discovery() -> JSONResponse:
        return JSONResponse(smart_configuration(settings), headers={"Cache-Control": "public, max-age=300"})

    return router


async def _read_form(request: Request) -> dict[str, str]:
    """RFC 6749 form body: url-encoded, each parameter at most once (§3.2)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        raise OAuthError("invalid_request", f"the token request must be {_FORM}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as error:
        raise OAuthError("invalid_request", "the token request body is not a valid form") from error
    form = dict(pairs)
    if len(form) != len(pairs):
        raise OAuthError("invalid_request", "a parameter appears more than once")
    return form
