"""HTTP wiring: `register(app, services)` (called from create_app) adds the capacity stages and operations to
the pipeline, `POST /ingest/capacity` (bed-status feed), the Subscription websocket, the dashboard
(`GET /capacity`) and — when the operator made aggregates public (ZCC_CAPACITY_PUBLIC_AGGREGATES=on) —
`GET /capacity/aggregate` without a token."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.routing import Route, WebSocketRoute

from gateway.capacity.aggregate import aggregate_bundle, aggregate_reports
from gateway.capacity.components import CapacityComponents
from gateway.capacity.dashboard import PATH as DASHBOARD_PATH
from gateway.capacity.dashboard import dashboard_endpoint
from gateway.capacity.feed import FeedResult
from gateway.capacity.hub import owner_lookup
from gateway.capacity.websocket import BROWSER_PATH, websocket_endpoint
from gateway.capacity.websocket import PATH as WEBSOCKET_PATH
from gateway.fhir.context import RequestScope, Services
from gateway.fhir.errors import FhirError, Issue, operation_outcome
from gateway.ingest.records import ACCEPTED, DUPLICATE

FEED_PATH = "/ingest/capacity"
PUBLIC_AGGREGATE_PATH = "/capacity/aggregate"
MAX_FEED = 16 * 1024 * 1024


def _json(body: dict[str, Any], status: int, media_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status, media_type=media_type)


def _status(result: FeedResult) -> int:
    if result.record.status in {ACCEPTED, DUPLICATE}:
        return 200
    return 422 if result.rows else 400


def feed_endpoint(components: CapacityComponents):  # type: ignore[no-untyped-def]
    async def post_feed(request: Request) -> Response:
        identity = getattr(request.state, "identity", None)
        if identity is None:
            return _json(operation_outcome([Issue("error", "login", "the capacity feed needs a client token")]), 401,
                         "application/fhir+json")
        raw = await request.body()
        if len(raw) > MAX_FEED:
            outcome = operation_outcome([Issue("error", "too-costly", f"the feed exceeds {MAX_FEED} bytes")])
            return _json(outcome, 413, "application/fhir+json")
        result = await asyncio.to_thread(components.feed.ingest, raw, request.headers.get("content-type"), identity)
        headers_url = f"{str(request.base_url).rstrip('/')}/ingest/{result.record.id}"
        response = _json(result.summary(), _status(result))
        response.headers["Location"] = headers_url
        return response

    return post_feed


def public_aggregate_endpoint(components: CapacityComponents, services: Services):  # type: ignore[no-untyped-def]
    """Regional aggregates (no patient data, no provider detail) for ROAZ and national use, outside /fhir so
    the auth stage does not apply; only mounted when the operator says aggregates are public."""

    async def get_aggregate(request: Request) -> Response:
        params = list(request.query_params.multi_items())
        scope = RequestScope(services)
        try:
            reports = await asyncio.to_thread(aggregate_reports, scope, components.terms, params, datetime.now(UTC))
        except FhirError as error:
            return _json(error.outcome(), error.status, "application/fhir+json")
        return _json(aggregate_bundle(reports), 200, "application/fhir+json")

    return get_aggregate


def register(app: FastAPI, services: Services) -> CapacityComponents:
    """Once per Services (a second app on the same Services reuses the components)."""
    components: CapacityComponents | None = getattr(services, "capacity", None)
    if components is None:
        components = CapacityComponents.build(services)
        services.capacity = components  # type: ignore[attr-defined]
    # in front of the routes already there: `/ingest/{source}` would otherwise take /ingest/capacity
    app.router.routes.insert(0, Route(FEED_PATH, feed_endpoint(components), methods=["POST"]))
    app.router.routes.insert(0, WebSocketRoute(
        WEBSOCKET_PATH, websocket_endpoint(services, components.registry, owner_lookup(components.hub))))
    auth = getattr(services, "auth", None)
    if auth is not None:  # the browser's route: the token comes in the first message (see websocket.py)
        app.router.routes.insert(0, WebSocketRoute(BROWSER_PATH, websocket_endpoint(
            services, components.registry, owner_lookup(components.hub), verify=auth.verifier.verify)))
    app.router.routes.insert(0, Route(DASHBOARD_PATH, dashboard_endpoint(components.terms), methods=["GET"]))
    if components.access.public_aggregates:
        app.router.routes.insert(0, Route(PUBLIC_AGGREGATE_PATH, public_aggregate_endpoint(components, services),
                                          methods=["GET"]))
    app.state.capacity = components
    return components
