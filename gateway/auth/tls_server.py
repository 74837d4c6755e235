"""uvicorn serving its own TLS with client certificates (mutual TLS, RFC 8705) — without a proxy in front.

uvicorn verifies the client certificate during the handshake (`ssl_cert_reqs=CERT_REQUIRED` against the CA file)
but does not hand it to the application. `TlsExtensionH11Protocol` does: for every connection it puts the verified
peer certificate into the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`, PEM strings),
which is where gateway/auth/client_cert.py reads it. Python's ssl module exposes only the leaf certificate, so the
chain holds the leaf; its issuer is checked against the configured UZI trust anchors as for proxied requests.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

PROTOCOL = "gateway.auth.tls_server:TlsExtensionH11Protocol"
"""The `http=` value for uvicorn.run (an import string, so that `--workers` processes find it too)."""


class TlsExtensionH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension for connections that arrive over TLS."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            self.app = WithTlsExtension(self.app, tls_extension(ssl_object))


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI TLS extension dict for a completed handshake."""
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
    }


class WithTlsExtension:
    """Adds a fixed TLS extension to every HTTP scope of one connection."""

    def __init__(self, app: ASGIApp, tls: Mapping[str, Any]) -> None:
        self.app, self.tls = app, dict(tls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": self.tls}}
        await self.app(scope, receive, send)
