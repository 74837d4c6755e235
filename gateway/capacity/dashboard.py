"""`GET /capacity`: the wall-screen dashboard. The page is a static shell (no data in it, so it needs no
token) with the capacity terms from the package; it reads `$aggregate` (with the 24 h trend) and
`$find-capacity` from /fhir with the user's bearer token, like any client, so the auth, scope and audit stages
apply to every number shown. Live: it creates a websocket Subscription on capacity Slots (ending after 12 h,
reused for the browser session) and binds it over `/capacity/live`; every notification refreshes the numbers
(debounced), so nothing polls."""

from __future__ import annotations

import json
from html import escape
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.capacity.terms import CapacityTerms
from gateway.capacity.websocket import BROWSER_PATH

PATH = "/capacity"
DEBOUNCE_MS = 1000  # notifications within this time cause one refresh


def terms_json(terms: CapacityTerms) -> str:
    groups = []
    for code, leaves in terms.groups.items():
        display = terms.categories[leaves[0]].group_display if leaves else code
        groups.append({"code": code, "display": display})
    regions = [{"code": code, "display": region.display} for code, region in terms.regions.items()]
    group_of = {code: category.group for code, category in terms.categories.items()}
    # `</` cannot close the script element the JSON sits in
    return json.dumps({"groups": groups, "regions": regions, "groupOf": group_of}).replace("</", "<\\/")


def render(terms: CapacityTerms, fhir_path: str, live_path: str = BROWSER_PATH, debounce_ms: int = DEBOUNCE_MS) -> str:
    page = resources.files("gateway.capacity").joinpath("static/dashboard.html").read_text(encoding="utf-8")
    return (page.replace("__TERMS__", terms_json(terms)).replace("__BASE__", escape(fhir_path))
            .replace("__LIVE__", escape(live_path)).replace("__DEBOUNCE_MS__", str(debounce_ms)))


def dashboard_endpoint(terms: CapacityTerms, fhir_path: str = "/fhir"):  # type: ignore[no-untyped-def]
    page = render(terms, fhir_path)

    async def dashboard(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                           "Content-Security-Policy": "default-src 'self'; "
                                           "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                           "connect-src 'self'; frame-ancestors 'none'"})

    return dashboard
