"""ASGI middleware: refuse requests whose headers are too large or too many (`431`, as an OperationOutcome).

uvicorn's httptools parser accepts a 200 KB header or 5,000 headers without complaint; every one of them
would then be copied, logged and matched by the layers behind. The reverse proxy should cut such requests
first (docs/deploy.md); this is the gateway's own bound."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.limits.outcome import send_outcome


class HeaderLimits:
    def __init__(self, app: ASGIApp, max_bytes: int, max_count: int) -> None:
        self.app, self.max_bytes, self.max_count = app, max_bytes, max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = scope.get("headers", [])
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            size += len(scope.get("query_string", b"")) + len(scope.get("raw_path", b"") or b"")
            problem = None
            if len(headers) > self.max_count:
                problem = f"the request has {len(headers)} headers; at most {self.max_count} are allowed"
            elif size > self.max_bytes:
                problem = f"the request line and headers take {size} bytes; at most {self.max_bytes} are allowed"
            if problem is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1009})
                else:
                    await send_outcome(send, 431, "too-costly", problem, {"Connection": "close"})
                return
        await self.app(scope, receive, send)
