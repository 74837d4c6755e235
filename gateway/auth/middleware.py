"""The auth pipeline stage: a pure ASGI middleware in front of every `/fhir` and `/ingest` route.

It authenticates (bearer token, and the certificate binding when the token has one), and hands the
verified `RequestIdentity` on in `scope["state"]["identity"]` (Starlette: `request.state.identity`).
Authorisation per resource type happens later, where the REST layer knows which types a request touches:
it calls `require_scope` (re-exported here) and renders `Forbidden` as a 403 OperationOutcome."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.client_cert import CertificateError, presented_chain, x5t_s256
from gateway.auth.enforcement import require_organization, require_scope
from gateway.auth.errors import Forbidden, operation_outcome
from gateway.auth.identity import RequestIdentity
from gateway.auth.scopes import Scope as SmartScope
from gateway.auth.settings import AuthSettings
from gateway.auth.tokens import ExpiredToken, InvalidToken, TokenVerifier

__all__ = ["AuthStage", "Forbidden", "require_organization", "require_scope", "INSECURE_DEV_IDENTITY"]

log = logging.getLogger("gateway.auth")

REALM = "zcc-gateway"
INSECURE_DEV_IDENTITY = RequestIdentity(
    client_id="insecure-dev",
    ura="00000000",
    organization_type="N6",
    role="insecure-dev",
    purpose_of_use="TREAT",
    scopes=(SmartScope("*", "cruds"),),
    insecure_dev=True,
)


class _Rejected(Exception):
    def __init__(self, status: int, issue_code: str, diagnostics: str, challenge: str) -> None:
        super().__init__(diagnostics)
        self.status, self.issue_code, self.diagnostics, self.challenge = status, issue_code, diagnostics, challenge


class AuthStage:
    def __init__(self, app: ASGIApp, verifier: TokenVerifier, settings: AuthSettings) -> None:
        self.app, self.verifier, self.settings = app, verifier, settings
        if settings.insecure_dev:
            log.warning("auth is in INSECURE DEV mode: requests without a token get a synthetic identity")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._protected(scope):
            await self.app(scope, receive, send)
            return
        try:
            identity = self._authenticate(scope)
        except _Rejected as rejection:
            await _reject(scope, send, rejection)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    def _protected(self, scope: Scope) -> bool:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if path in self.settings.public_paths:
            return False
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.settings.protected_prefixes)

    def _authenticate(self, scope: Scope) -> RequestIdentity:
        token = _bearer_token(scope)
        if token is None:
            if self.settings.insecure_dev:
                log.warning("INSECURE DEV: %s %s let through without a token", scope.get("method", "WS"), scope["path"])
                return INSECURE_DEV_IDENTITY
            raise _Rejected(401, "login", "this endpoint needs a bearer access token", f'Bearer realm="{REALM}"')
        try:
            identity = self.verifier.verify(token)
        except ExpiredToken as error:
            raise _invalid_token("expired", str(error)) from error
        except InvalidToken as error:
            raise _invalid_token("security", str(error)) from error
        self._check_binding(scope, identity)
        return identity

    def _check_binding(self, scope: Scope, identity: RequestIdentity) -> None:
        """RFC 8705: a bound token is only good on a connection presenting the same certificate."""
        try:
            chain = presented_chain(scope, self.settings)
        except CertificateError as error:
            raise _invalid_token("security", f"client certificate: {error}") from error
        if not chain:
            if identity.cert_thumbprint or self.settings.require_mtls:
                raise _invalid_token("security", "this token must be used with its client certificate (mTLS)")
            return
        if identity.cert_thumbprint and not hmac.compare_digest(identity.cert_thumbprint, x5t_s256(chain[0])):
            raise _invalid_token("security", "the client certificate is not the one the token is bound to")
        if self.settings.require_mtls and not identity.cert_thumbprint:
            raise _invalid_token("security", "this server only accepts certificate-bound tokens")


def _invalid_token(issue_code: str, description: str) -> _Rejected:
    safe = description.replace('"', "'")
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{safe}"'
    return _Rejected(401, issue_code, description, challenge)


def _bearer_token(scope: Scope) -> str | None:
    values = [value for name, value in scope.get("headers", []) if name.lower() == b"authorization"]
    if not values:
        return None
    if len(values) > 1:
        challenge = f'Bearer realm="{REALM}", error="invalid_request"'
        raise _Rejected(400, "invalid", "more than one Authorization header", challenge)
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or " " in token:
        raise _invalid_token("security", "the Authorization header does not hold a single bearer token")
    return token


async def _reject(scope: Scope, send: Send, rejection: _Rejected) -> None:
    if scope["type"] == "websocket":  # closing before accept makes the server answer 403
        await send({"type": "websocket.close", "code": 1008, "reason": rejection.diagnostics[:120]})
        return
    body = json.dumps(operation_outcome(rejection.issue_code, rejection.diagnostics)).encode("utf-8")
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/fhir+json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"www-authenticate", rejection.challenge.encode("latin-1", "replace")),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})


def identity_of(scope: dict[str, Any]) -> RequestIdentity | None:
    """The identity the stage put in this ASGI scope (None on unprotected paths)."""
    return (scope.get("state") or {}).get("identity")
