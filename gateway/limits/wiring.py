"""Mount the request limits on an app; called from `gateway.app.create_app` before the auth middleware is
added, so the limits run inside it and see the authenticated client."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.limits.body_deadline import BodyDeadlineMiddleware
from gateway.limits.headers import HeaderLimits
from gateway.limits.methods import MethodAllowList
from gateway.limits.rate import RateLimiter
from gateway.limits.rate_middleware import RateLimitMiddleware
from gateway.limits.unavailable import database_unavailable
from gateway.settings import Settings


def add_request_limits(app: FastAPI, settings: Settings) -> None:
    app.add_exception_handler(DBAPIError, database_unavailable)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_middleware(BodyDeadlineMiddleware, seconds=settings.body_timeout)
    app.add_middleware(MethodAllowList)
    app.add_middleware(HeaderLimits, max_bytes=settings.max_header_bytes, max_count=settings.max_header_count)
    if settings.rate_limit > 0:  # added last: runs first, so a throttled request costs nothing else
        app.add_middleware(RateLimitMiddleware, limiter=RateLimiter(settings.rate_limit, settings.rate_burst),
                           trust_forwarded=settings.rate_limit_trust_forwarded)
