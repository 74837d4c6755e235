"""ASGI middleware: per-client rate limiting with `429 Too Many Requests` and `Retry-After`.

It sits inside the auth middleware, so an authenticated request is counted against its client id (all tokens
of one client share a bucket); anything without an identity (token endpoint, discovery, metadata) against the
peer address. With `trust_forwarded` the first `X-Forwarded-For` address is used (behind a reverse proxy)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.limits.outcome import send_outcome
from gateway.limits.rate import RateLimiter, retry_after_header


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, trust_forwarded: bool = False) -> None:
        self.app, self.limiter, self.trust_forwarded = app, limiter, trust_forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = self.client_key(scope)
        wait = self.limiter.acquire(key)
        if wait > 0:
            retry = retry_after_header(wait)
            await send_outcome(send, 429, "throttled",
                               f"too many requests from {key}; retry after {retry} s", {"Retry-After": retry})
            return
        await self.app(scope, receive, send)

    def client_key(self, scope: Scope) -> str:
        identity = scope.get("state", {}).get("identity")
        if identity is not None:
            return f"client:{identity.client_id}"
        if self.trust_forwarded:
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-for":
                    return "address:" + value.decode("latin-1").split(",")[0].strip()
        client = scope.get("client")
        return f"address:{client[0] if client else 'unknown'}"
