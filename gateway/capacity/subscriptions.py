"""R4 Subscriptions on capacity (criteria style): checking a Subscription when it is written, loading the
active ones from the store (so a restart loses none), and matching changed resources against criteria with
the normal search engine (chains, region, everything a search can say)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection, select

from gateway.fhir.context import Services
from gateway.fhir.errors import FhirError
from gateway.search.query import parse_search
from gateway.store import search_sql
from gateway.store.schema import idx_reference

OWNER_SYSTEM = "https://zcc-gateway.nl/fhir/CodeSystem/subscription-owner"
CHANNELS = frozenset({"rest-hook", "websocket"})
PAYLOADS = frozenset({"", "application/fhir+json", "application/json"})
MAX_ACTIVE = 10_000


@dataclass(frozen=True)
class ActiveSubscription:
    id: str
    resource_type: str
    params: tuple[tuple[str, str], ...]
    channel: str
    endpoint: str | None
    payload: str  # "" (ping only) or a FHIR JSON mime type
    headers: tuple[tuple[str, str], ...]
    owner: str | None


def split_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    resource_type, _, query = criteria.partition("?")
    return resource_type.strip("/"), parse_qsl(query, keep_blank_values=True)


def check_subscription(body: dict[str, Any], services: Services, owner: str | None) -> None:
    """Refuse what cannot be delivered; activate (`requested` -> `active`) and record the owner."""
    criteria = body.get("criteria")
    if not isinstance(criteria, str) or not criteria:
        raise FhirError(422, "required", "Subscription.criteria is required", ["Subscription.criteria"])
    resource_type, params = split_criteria(criteria)
    if resource_type not in services.resource_types:
        raise FhirError(422, "invalid", f"criteria names an unknown type '{resource_type}'", ["Subscription.criteria"])
    query = parse_search(resource_type, params, services.search)
    if query.errors:
        raise FhirError(422, "invalid", f"criteria: {query.errors[0].message}", ["Subscription.criteria"])
    channel = body.get("channel") or {}
    if channel.get("type") not in CHANNELS:
        raise FhirError(422, "not-supported", f"channel.type must be one of {', '.join(sorted(CHANNELS))}",
                        ["Subscription.channel.type"])
    if channel.get("type") == "rest-hook" and not str(channel.get("endpoint", "")).startswith(("http://", "https://")):
        raise FhirError(422, "required", "a rest-hook needs an http(s) channel.endpoint",
                        ["Subscription.channel.endpoint"])
    if channel.get("payload", "") not in PAYLOADS:
        raise FhirError(422, "not-supported", "channel.payload must be empty or application/fhir+json",
                        ["Subscription.channel.payload"])
    if body.get("status") in (None, "requested", "active"):
        body["status"] = "active"
    if owner:
        meta = body.setdefault("meta", {})
        tags = [t for t in meta.get("tag", []) if t.get("system") != OWNER_SYSTEM]
        meta["tag"] = [*tags, {"system": OWNER_SYSTEM, "code": owner}]


def active_subscription(resource: dict[str, Any], now: datetime | None = None) -> ActiveSubscription | None:
    if resource.get("status") != "active" or not isinstance(resource.get("criteria"), str):
        return None
    if _ended(resource.get("end"), now or datetime.now(UTC)):
        return None
    channel = resource.get("channel") or {}
    if channel.get("type") not in CHANNELS:
        return None
    resource_type, params = split_criteria(resource["criteria"])
    headers = []
    for header in channel.get("header", []) or []:
        name, _, value = str(header).partition(":")
        if name.strip() and value.strip():
            headers.append((name.strip(), value.strip()))
    tags = (resource.get("meta") or {}).get("tag", [])
    owner = next((t.get("code") for t in tags if t.get("system") == OWNER_SYSTEM), None)
    return ActiveSubscription(resource["id"], resource_type, tuple(params), channel["type"], channel.get("endpoint"),
                              channel.get("payload", "") or "", tuple(headers), owner)


def _ended(end: Any, now: datetime) -> bool:
    """`Subscription.end` passed (e.g. the dashboard's own Subscriptions, which end after 12 h)."""
    if not isinstance(end, str):
        return False
    try:
        moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return False
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) <= now


def load_active(services: Services) -> list[ActiveSubscription]:
    # a connection of its own: this runs on request threads too, whose reader may hold an older snapshot
    query = parse_search("Subscription", [("status", "active")], services.search)
    with services.store.engine.connect() as connection:
        keys = search_sql.match_keys(connection, query, limit=MAX_ACTIVE)
        stored = services.store.get_many(connection, keys)
    found = (active_subscription(s.resource()) for s in stored if not s.deleted)
    return [subscription for subscription in found if subscription is not None]


def matching_ids(services: Services, subscription: ActiveSubscription, ids: list[str],
                 connection: Connection | None = None) -> list[str]:
    """Which of these resources the criteria match now: as committed (this thread's reader), or as seen by
    `connection` — the write transaction that is changing them (the rest-hook outbox). Chained parameters
    (`schedule.region=x`) are checked from the changed resources outwards — their own references, then the
    target with the rest of the chain — instead of as a search over every resource the chain could reach."""
    plain = [(name, value) for name, value in subscription.params if not _is_chain(name)]
    chains = [(name, value) for name, value in subscription.params if _is_chain(name)]
    query = parse_search(subscription.resource_type, [*plain, ("_id", ",".join(ids))], services.search)
    if query.errors:
        return []
    if connection is not None:
        return _matching(services, connection, query, len(ids), chains)
    with services.store.read() as reader:
        return _matching(services, reader, query, len(ids), chains)


def _matching(services: Services, connection: Connection, query: Any, count: int,
              chains: list[tuple[str, str]]) -> list[str]:
    keys = search_sql.match_keys(connection, query, limit=count + 1)
    return [stored.id for stored in services.store.get_many(connection, keys)
            if all(_chain_holds(services, connection, stored.res_key, name, value) for name, value in chains)]


def _is_chain(name: str) -> bool:
    """`schedule.region`, `schedule:Schedule.region` (not `_has:...`, whose parts are separated by colons)."""
    return not name.startswith("_") and "." in name


def _chain_holds(services: Services, connection: Any, res_key: int, name: str, value: str) -> bool:
    head, _, rest = name.partition(".")
    reference_param, _, wanted_type = head.partition(":")
    rows = connection.execute(
        select(idx_reference.c.target_type, idx_reference.c.target_id)
        .where(idx_reference.c.res_key == res_key, idx_reference.c.param == reference_param)
    ).all()
    targets: dict[str, list[str]] = {}
    for target_type, target_id in rows:
        if target_type and target_id and (not wanted_type or target_type == wanted_type):
            targets.setdefault(target_type, []).append(target_id)
    for target_type, target_ids in targets.items():
        query = parse_search(target_type, [(rest, value), ("_id", ",".join(target_ids))], services.search)
        if not query.errors and search_sql.match_keys(connection, query, limit=1):
            return True
    return False
