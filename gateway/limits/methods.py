"""ASGI middleware: only the HTTP methods the gateway serves reach the application. TRACE (cross-site
tracing), CONNECT and WebDAV verbs get a `405` OperationOutcome with an `Allow` header, instead of the
framework's plain-text answer."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.limits.outcome import send_outcome

SERVED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MethodAllowList:
    def __init__(self, app: ASGIApp, methods: tuple[str, ...] = SERVED_METHODS) -> None:
        self.app, self.methods = app, methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in self.methods:
            method = scope["method"][:20]
            await send_outcome(send, 405, "not-supported", f"the HTTP method {method} is not supported",
                               {"Allow": ", ".join(self.methods)})
            return
        await self.app(scope, receive, send)
