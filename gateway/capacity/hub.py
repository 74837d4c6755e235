"""Notification delivery: committed changes go on a queue; a worker thread per channel matches them against
the active Subscriptions and delivers — rest-hook by HTTP POST (retried with back-off), websocket through the
registry. Writers never wait for a receiver, and a slow rest-hook receiver never delays a websocket client.

Several processes on one PostgreSQL (`gateway.capacity.bus`): the process that committed a change delivers
the **rest-hooks** for it, from its own queue, and announces the change ids with NOTIFY; every process (the
writer too) hears the announcement and delivers to the **websockets bound to it**. So each rest-hook
notification is POSTed once (by exactly one process: the writer, no claim needed) and each websocket client
gets each change once, whichever instance it is connected to. On SQLite (one process) both channels are
delivered from the local queue. Before matching, the worker checks a cheap generation of the stored
Subscriptions (sum of their versions) and reloads them when another process changed one."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from gateway.capacity.bus import PostgresChangeBus
from gateway.capacity.subscriptions import ActiveSubscription, load_active, matching_ids
from gateway.capacity.websocket import WebSocketRegistry
from gateway.fhir.context import Services
from gateway.store.schema import resource

log = logging.getLogger("gateway.capacity.notify")
Change = tuple[str, str]  # (resource type, id)
REST_HOOK_ATTEMPTS = 3
WATCHED = frozenset({"Slot", "Schedule", "HealthcareService", "Location", "Organization"})
CATCH_UP_LIMIT = 10_000
_STOP = object()
CHANNELS = ("rest-hook", "websocket")  # one worker thread each: a slow rest-hook never delays a websocket


class SubscriptionHub:
    def __init__(self, services: Services, registry: WebSocketRegistry,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.5,
                 shared: bool | None = None) -> None:
        """`shared`: deliver through PostgreSQL LISTEN/NOTIFY (default: when the store is PostgreSQL)."""
        self.services, self.registry, self.backoff = services, registry, backoff
        self._http = httpx.Client(timeout=5.0, transport=transport)
        self._queues: dict[str, queue.Queue[Any]] = {channel: queue.Queue() for channel in CHANNELS}
        self._lock = threading.Lock()
        self._subscriptions: list[ActiveSubscription] = []
        self._generation: tuple[int, int] | None = None
        self._threads: dict[str, threading.Thread] = {}
        self.delivered = 0
        self.failures: list[str] = []
        engine = services.store.engine
        if shared is None:
            shared = engine.dialect.name == "postgresql"
        self.bus = PostgresChangeBus(engine, self._heard, self._catch_up) if shared else None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stored Subscriptions and (PostgreSQL) start listening; the worker thread starts with the
        first notification."""
        self.reload()
        if self.bus is not None:
            self.bus.start()

    def _put(self, channel: str, item: Any) -> None:
        with self._lock:
            thread = self._threads.get(channel)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._run, args=(channel,), name=f"capacity-{channel}", daemon=True)
                self._threads[channel] = thread
                thread.start()
        self._queues[channel].put(item)

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.stop()
        with self._lock:
            threads, self._threads = self._threads, {}
        for channel in threads:
            self._queues[channel].put(_STOP)
        for thread in threads.values():
            thread.join(timeout=5)

    def reload(self) -> None:
        """Re-read the active Subscriptions from the store (at start-up, when one is written here, and when
        the generation shows another process wrote one)."""
        generation = self._read_generation()
        subscriptions = load_active(self.services)
        with self._lock:
            self._subscriptions, self._generation = subscriptions, generation

    def refresh(self) -> None:
        """Reload when a Subscription was written anywhere since the last load (one small aggregate query)."""
        if self._read_generation() != self._generation:
            self.reload()

    def _read_generation(self) -> tuple[int, int]:
        query = (select(func.count(), func.coalesce(func.sum(resource.c.version), 0))
                 .where(resource.c.type == "Subscription"))
        with self.services.store.engine.connect() as connection:
            count, versions = connection.execute(query).one()
        return int(count), int(versions)

    def subscription(self, subscription_id: str) -> ActiveSubscription | None:
        found = self._known(subscription_id)
        if found is None:  # perhaps created on another instance a moment ago
            self.refresh()
            found = self._known(subscription_id)
        return found

    def _known(self, subscription_id: str) -> ActiveSubscription | None:
        with self._lock:
            return next((s for s in self._subscriptions if s.id == subscription_id), None)

    # -- producing -----------------------------------------------------------------------------------------

    def publish(self, changes: list[Change]) -> None:
        """Called after the commit of the changes, by the process that wrote them."""
        if changes:
            changes = list(dict.fromkeys(changes))
            self._put("rest-hook", changes)  # rest-hooks: always (and only) by the writing process
            if self.bus is not None:
                self.bus.announce(changes)  # websockets: every process hears it, this one included
            elif self.registry.bound_ids():
                self._put("websocket", changes)

    def _heard(self, origin: str, changes: list[Change]) -> None:
        """An announcement from any process (this one included), on the listener thread."""
        if changes and self.registry.bound_ids():
            self._put("websocket", changes)

    def _catch_up(self, since: str) -> None:
        """After the listener reconnected: what changed while it was not listening, for the websockets."""
        if not self.registry.bound_ids():
            return
        query = (select(resource.c.type, resource.c.id)
                 .where(resource.c.type.in_(sorted(WATCHED)), resource.c.last_updated >= since)
                 .limit(CATCH_UP_LIMIT))
        with self.services.store.engine.connect() as connection:
            changes = [(row.type, row.id) for row in connection.execute(query)]
        log.info("capacity listener reconnected: catching up %d changes since %s", len(changes), since)
        self._heard("", changes)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything published so far is delivered (tests, benchmarks)."""
        events = []
        for channel in CHANNELS:
            done = threading.Event()
            self._put(channel, done)
            events.append(done)
        deadline = time.monotonic() + timeout
        return all(done.wait(max(0.0, deadline - time.monotonic())) for done in events)

    # -- the worker ----------------------------------------------------------------------------------------

    def _run(self, channel: str) -> None:
        while True:
            item = self._queues[channel].get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._notify(channel, item)
            except Exception:  # noqa: BLE001 - the worker must survive a bad notification
                log.exception("capacity notification failed")

    def _notify(self, channel: str, changes: list[Change]) -> None:
        self.refresh()
        bound = self.registry.bound_ids()
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.channel == channel
                             and (channel != "websocket" or s.id in bound)]
        by_type: dict[str, list[str]] = {}
        for resource_type, resource_id in changes:
            by_type.setdefault(resource_type, []).append(resource_id)
        for subscription in subscriptions:
            ids = by_type.get(subscription.resource_type)
            if not ids:
                continue
            matched = _retried(lambda s=subscription, i=ids: matching_ids(self.services, s, i))
            if matched:
                self._deliver(subscription, matched)

    def _deliver(self, subscription: ActiveSubscription, ids: list[str]) -> None:
        bundle = _retried(lambda: self._notification(subscription, ids)) if subscription.payload else None
        if subscription.channel == "websocket":
            messages = [f"ping {subscription.id}"] + ([json.dumps(bundle)] if bundle else [])
            if self.registry.send(subscription.id, messages):
                self.delivered += 1
            return
        self._post(subscription, bundle)

    def _post(self, subscription: ActiveSubscription, bundle: dict[str, Any] | None) -> None:
        headers = dict(subscription.headers)
        content = b""
        if bundle is not None:
            headers["Content-Type"] = "application/fhir+json"
            content = json.dumps(bundle).encode("utf-8")
        for attempt in range(REST_HOOK_ATTEMPTS):
            try:
                response = self._http.post(str(subscription.endpoint), content=content, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            time.sleep(self.backoff * (2**attempt))
        self.failures.append(f"Subscription/{subscription.id}: {reason}")
        log.warning("rest-hook for Subscription/%s failed: %s", subscription.id, reason)

    def _notification(self, subscription: ActiveSubscription, ids: list[str]) -> dict[str, Any]:
        """A history Bundle with the current version of each matched resource."""
        base = self.services.settings.base_url
        with self.services.store.read() as connection:
            stored = [self.services.store.get(connection, subscription.resource_type, i) for i in ids]
        entries = [{"fullUrl": f"{base}/{s.type}/{s.id}", "resource": s.resource(),
                    "request": {"method": "PUT", "url": f"{s.type}/{s.id}"},
                    "response": {"status": "200", "lastModified": s.last_updated}}
                   for s in stored if s is not None and not s.deleted]
        return {"resourceType": "Bundle", "type": "history",
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "meta": {"tag": [{"system": "https://zcc-gateway.nl/fhir/CodeSystem/subscription-notification",
                                  "code": subscription.id}]},
                "entry": entries}


def _retried(read: Callable[[], Any]) -> Any:
    """A read on this thread's long-lived reader connection, once more when that connection had died (the
    database restarted since the last notification): `ResourceStore.read` drops a failed reader, so the
    second attempt runs on a fresh connection. Without this the first notification after a restart is lost."""
    try:
        return read()
    except DBAPIError as error:
        if not (error.connection_invalidated or isinstance(error, OperationalError)):
            raise
        return read()


def owner_lookup(hub: SubscriptionHub) -> Callable[[str], tuple[bool, str | None]]:
    def owner_of(subscription_id: str) -> tuple[bool, str | None]:
        subscription = hub.subscription(subscription_id)
        if subscription is None or subscription.channel != "websocket":
            return False, None
        return True, subscription.owner

    return owner_of
