"""Notification delivery: committed changes go on a queue; one worker thread matches them against the
active Subscriptions and delivers — rest-hook by HTTP POST (retried with back-off), websocket through the
registry. Writers never wait for a receiver."""

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

from gateway.capacity.subscriptions import ActiveSubscription, load_active, matching_ids
from gateway.capacity.websocket import WebSocketRegistry
from gateway.fhir.context import Services

log = logging.getLogger("gateway.capacity.notify")
Change = tuple[str, str]  # (resource type, id)
REST_HOOK_ATTEMPTS = 3
_STOP = object()


class SubscriptionHub:
    def __init__(self, services: Services, registry: WebSocketRegistry,
                 transport: httpx.BaseTransport | None = None, backoff: float = 0.5) -> None:
        self.services, self.registry, self.backoff = services, registry, backoff
        self._http = httpx.Client(timeout=5.0, transport=transport)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._subscriptions: list[ActiveSubscription] = []
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failures: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stored Subscriptions; the worker thread starts with the first notification."""
        self.reload()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="capacity-notify", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=5)

    def reload(self) -> None:
        """Re-read the active Subscriptions from the store (at start-up and when one is written)."""
        subscriptions = load_active(self.services)
        with self._lock:
            self._subscriptions = subscriptions

    def subscription(self, subscription_id: str) -> ActiveSubscription | None:
        with self._lock:
            return next((s for s in self._subscriptions if s.id == subscription_id), None)

    # -- producing -----------------------------------------------------------------------------------------

    def publish(self, changes: list[Change]) -> None:
        if changes:
            self._ensure_worker()
            self._queue.put(list(dict.fromkeys(changes)))

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything published so far is delivered (tests, benchmarks)."""
        done = threading.Event()
        self._ensure_worker()
        self._queue.put(done)
        return done.wait(timeout)

    # -- the worker ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._notify(item)
            except Exception:  # noqa: BLE001 - the worker must survive a bad notification
                log.exception("capacity notification failed")

    def _notify(self, changes: list[Change]) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        by_type: dict[str, list[str]] = {}
        for resource_type, resource_id in changes:
            by_type.setdefault(resource_type, []).append(resource_id)
        for subscription in subscriptions:
            ids = by_type.get(subscription.resource_type)
            if not ids:
                continue
            matched = matching_ids(self.services, subscription, ids)
            if matched:
                self._deliver(subscription, matched)

    def _deliver(self, subscription: ActiveSubscription, ids: list[str]) -> None:
        bundle = self._notification(subscription, ids) if subscription.payload else None
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


def owner_lookup(hub: SubscriptionHub) -> Callable[[str], tuple[bool, str | None]]:
    def owner_of(subscription_id: str) -> tuple[bool, str | None]:
        subscription = hub.subscription(subscription_id)
        if subscription is None or subscription.channel != "websocket":
            return False, None
        return True, subscription.owner

    return owner_of
