"""Notification delivery. Writers never wait for a receiver, and a slow rest-hook receiver never delays a
websocket client (each channel has its own worker thread).

**Rest-hooks** go through a transactional outbox (`gateway.capacity.outbox`): in the write transaction the
changed resources are matched against the active rest-hook Subscriptions and one row per (Subscription,
changed version) is inserted; after the commit the writer wakes its delivery worker, which claims the rows,
POSTs (retried with back-off) and marks them delivered or given-up. Any process claims rows another one left
behind (not claimed, or lease expired), so a crash between commit and delivery loses nothing: delivery is
at-least-once, and exactly once when no process dies mid-delivery.

**Websockets**: committed changes go on a queue; the websocket worker matches them against the Subscriptions
bound on this process and sends through the registry. Several processes on one PostgreSQL
(`gateway.capacity.bus`): the writer announces the change ids with NOTIFY and every process (the writer too)
delivers to the websockets bound to it, so a websocket client gets each change whichever instance it is
connected to. On SQLite (one process) the websocket changes come from the local queue. Before matching, the
hub checks a cheap generation of the stored Subscriptions (count, sum of versions) and reloads them when
another process changed one."""

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
from sqlalchemy import Connection, func, select, tuple_
from sqlalchemy.exc import DBAPIError, OperationalError

from conformance import fhirjson
from gateway.capacity.bus import PostgresChangeBus
from gateway.capacity.outbox import DELIVERED, GIVEN_UP, ClaimedRow, OutboxWorker, insert_rows
from gateway.capacity.subscriptions import ActiveSubscription, load_active, matching_ids
from gateway.capacity.websocket import WebSocketRegistry
from gateway.fhir.context import Services
from gateway.store.repository import HistoryEntry
from gateway.store.schema import resource, resource_version

log = logging.getLogger("gateway.capacity.notify")
Change = tuple[str, str]  # (resource type, id)
REST_HOOK_ATTEMPTS = 3
WATCHED = frozenset({"Slot", "Schedule", "HealthcareService", "Location", "Organization"})
CATCH_UP_LIMIT = 10_000
_STOP = object()
CHANNELS = ("websocket",)  # queued channels; rest-hooks are worked off the outbox by their own thread


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
        self.watched = WATCHED
        self.outbox = OutboxWorker(services.store, self._deliver_claimed)

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stored Subscriptions and (PostgreSQL) start listening; the worker thread starts with the
        first notification."""
        self.reload()
        if self.bus is not None:
            self.bus.start()
        self.outbox.start()  # also picks up rows a crashed process left pending

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
        self.outbox.stop()
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

    def _read_generation(self, connection: Connection | None = None) -> tuple[int, int]:
        query = (select(func.count(), func.coalesce(func.sum(resource.c.version), 0))
                 .where(resource.c.type == "Subscription"))
        if connection is not None:
            count, versions = connection.execute(query).one()
        else:
            with self.services.store.engine.connect() as own:
                count, versions = own.execute(query).one()
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

    def enqueue_rest_hooks(self, connection: Connection, batch: str, changes: list[tuple[str, str, int]]) -> None:
        """In the write transaction (`OutboxStage`): one outbox row per rest-hook Subscription whose criteria
        the written version matches, checked on the writing connection (it sees what is being committed)."""
        if not changes:
            return
        if self._read_generation(connection) != self._generation:
            self.reload()
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.channel == "rest-hook"]
        versions = {(resource_type, resource_id): version for resource_type, resource_id, version in changes}
        rows: list[tuple[str, str, str, int]] = []
        for subscription in subscriptions:
            ids = list(dict.fromkeys(i for t, i, _ in changes if t == subscription.resource_type))
            if not ids:
                continue
            for matched in matching_ids(self.services, subscription, ids, connection):
                rows.append((subscription.id, subscription.resource_type, matched,
                             versions[(subscription.resource_type, matched)]))
        insert_rows(connection, batch, rows)

    def publish(self, changes: list[Change]) -> None:
        """Called after the commit of the changes, by the process that wrote them."""
        if changes:
            changes = list(dict.fromkeys(changes))
            self.outbox.wake()  # rest-hooks: this process's rows, delivered at once (any process may take them)
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
        """Wait until everything published so far is delivered (tests, benchmarks, the import command): the
        websocket queue worked off and no outbox row pending (in any process)."""
        events = []
        for channel in CHANNELS:
            done = threading.Event()
            self._put(channel, done)
            events.append(done)
        deadline = time.monotonic() + timeout
        self.outbox.wake()
        while self.outbox.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        return all(done.wait(max(0.0, deadline - time.monotonic())) for done in events) and not self.outbox.pending()

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
        """A websocket notification: the current state of the matched resources."""
        bundle = _retried(lambda: self._notification(subscription, ids)) if subscription.payload else None
        messages = [f"ping {subscription.id}"] + ([json.dumps(bundle)] if bundle else [])
        if self.registry.send(subscription.id, messages):
            self.delivered += 1

    def _deliver_claimed(self, subscription_id: str, rows: list[ClaimedRow]) -> tuple[str, str | None]:
        """The outbox worker's delivery: one rest-hook POST for the rows of one Subscription and one write
        transaction, carrying exactly the versions that were written."""
        subscription = self.subscription(subscription_id)
        if subscription is None or subscription.channel != "rest-hook":
            reason = "the Subscription is no longer active"
            log.info("rest-hook for Subscription/%s dropped: %s", subscription_id, reason)
            return GIVEN_UP, reason
        versions = list(dict.fromkeys((row.resource_type, row.resource_id, row.version) for row in rows))
        bundle = _retried(lambda: self._notification(subscription, versions=versions)) if subscription.payload else None
        return self._post(subscription, bundle)

    def _post(self, subscription: ActiveSubscription, bundle: dict[str, Any] | None) -> tuple[str, str | None]:
        headers = dict(subscription.headers)
        content = b""
        if bundle is not None:
            headers["Content-Type"] = "application/fhir+json"
            content = json.dumps(bundle).encode("utf-8")
        reason = "not attempted"
        for attempt in range(REST_HOOK_ATTEMPTS):
            try:
                response = self._http.post(str(subscription.endpoint), content=content, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return DELIVERED, None
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            if attempt + 1 < REST_HOOK_ATTEMPTS:
                time.sleep(self.backoff * (2**attempt))
        self.failures.append(f"Subscription/{subscription.id}: {reason}")
        log.warning("rest-hook for Subscription/%s failed after %d attempts, given up: %s", subscription.id,
                    REST_HOOK_ATTEMPTS, reason)
        return GIVEN_UP, reason

    def _notification(self, subscription: ActiveSubscription, ids: list[str] | None = None,
                      versions: list[tuple[str, str, int]] | None = None) -> dict[str, Any]:
        """A history Bundle: the current version of each matched resource (`ids`, websockets) or exactly the
        written versions (`versions`, rest-hooks from the outbox)."""
        base = self.services.settings.base_url
        store = self.services.store
        with store.read() as connection:
            if versions is not None:
                found = _versions(connection, versions)
            else:
                found = [store.get(connection, subscription.resource_type, i) for i in ids or []]
        entries = [{"fullUrl": f"{base}/{s.type}/{s.id}", "resource": fhirjson.loads_trusted(s.body),
                    "request": {"method": "PUT", "url": f"{s.type}/{s.id}"},
                    "response": {"status": "200", "etag": f'W/"{s.version}"', "lastModified": s.last_updated}}
                   for s in found if s is not None and not s.deleted and s.body is not None]
        return {"resourceType": "Bundle", "type": "history",
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "meta": {"tag": [{"system": "https://zcc-gateway.nl/fhir/CodeSystem/subscription-notification",
                                  "code": subscription.id}]},
                "entry": entries}


def _versions(connection: Connection, versions: list[tuple[str, str, int]]) -> list[HistoryEntry]:
    """The given (type, id, version)s from the history, in that order, in one query per type."""
    found: dict[tuple[str, str, int], HistoryEntry] = {}
    for resource_type in sorted({t for t, _, _ in versions}):
        wanted = [(i, v) for t, i, v in versions if t == resource_type]
        query = select(resource_version).where(resource_version.c.type == resource_type,
                                               tuple_(resource_version.c.id, resource_version.c.version).in_(wanted))
        for row in connection.execute(query):
            found[(row.type, row.id, row.version)] = HistoryEntry(row.type, row.id, row.version, row.last_updated,
                                                                  row.method, row.deleted, row.body)
    return [found[key] for key in versions if key in found]


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
