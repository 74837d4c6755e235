"""Capacity changes shared between gateway processes on one PostgreSQL: PostgreSQL LISTEN/NOTIFY.

After a write committed, the process that wrote it announces the changed ids (`pg_notify` on channel
`zcc_capacity`, payload JSON `{"o": origin, "c": [[type, id], ...]}`, chunked under NOTIFY's 8000-byte limit).
Every process — the writer included — listens on its own connection (a daemon thread, psycopg 3) and hands
what it hears to its hub, which reads the rows itself: the payload carries ids only, never data.

The listener reconnects by itself (back-off up to 2 s) when PostgreSQL restarts or the connection breaks; it
checks the connection every few seconds so a silently dead socket is found too. What was written while it was
not listening is caught up after the reconnect: the hub is asked for every watched resource changed since
(shortly before) the connection was lost, so a websocket client may get a change twice after a database
restart, never zero times.

SQLite has no such mechanism and is single-process by design: there the hub delivers in-process only."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

log = logging.getLogger("gateway.capacity.bus")
CHANNEL = "zcc_capacity"
MAX_PAYLOAD = 7900  # PostgreSQL refuses NOTIFY payloads of 8000 bytes and more
KEEPALIVE_SECONDS = 5.0
CATCH_UP_MARGIN = timedelta(seconds=2)
Change = tuple[str, str]


def listener_dsn(engine: Engine) -> str:
    """A libpq URI for psycopg from the SQLAlchemy engine's URL (same server, database and credentials)."""
    return make_url(engine.url).set(drivername="postgresql").render_as_string(hide_password=False)


def payloads(origin: str, changes: list[Change]) -> list[str]:
    """The changes as NOTIFY payloads, each under the size limit (a change never spans two payloads)."""
    result: list[str] = []
    batch: list[list[str]] = []
    for resource_type, resource_id in changes:
        candidate = [*batch, [resource_type, resource_id]]
        if batch and len(json.dumps({"o": origin, "c": candidate}).encode()) > MAX_PAYLOAD:
            result.append(json.dumps({"o": origin, "c": batch}))
            batch = [[resource_type, resource_id]]
        else:
            batch = candidate
    if batch:
        result.append(json.dumps({"o": origin, "c": batch}))
    return result


def decode(payload: str) -> tuple[str, list[Change]]:
    data = json.loads(payload)
    return str(data.get("o", "")), [(str(t), str(i)) for t, i in data.get("c", [])]


class PostgresChangeBus:
    """`announce(changes)` after a commit; `on_changes(origin, changes)` is called on the listener thread for
    every announcement of any process; `catch_up(since)` after a reconnect (see the module docstring)."""

    def __init__(self, engine: Engine, on_changes: Callable[[str, list[Change]], None],
                 catch_up: Callable[[str], None], reconnect_max: float = 2.0) -> None:
        self.engine, self.on_changes, self.catch_up = engine, on_changes, catch_up
        self.origin = uuid.uuid4().hex[:12]
        self.reconnect_max = reconnect_max
        self.listening = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_at: str | None = None

    # -- producing -----------------------------------------------------------------------------------------

    def announce(self, changes: list[Change]) -> bool:
        """Notify every listening process; False (logged, not raised: the write itself succeeded) when the
        database cannot be reached — listeners then catch up when they reconnect."""
        try:
            with self.engine.connect() as connection:
                for payload in payloads(self.origin, changes):
                    connection.execute(text("SELECT pg_notify(:channel, :payload)"),
                                       {"channel": CHANNEL, "payload": payload})
                connection.commit()
            return True
        except Exception as error:  # noqa: BLE001 - never fail a committed write over its notification
            log.warning("capacity change announcement failed: %s", error)
            return False

    # -- listening -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="capacity-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def wait_listening(self, timeout: float = 10.0) -> bool:
        return self.listening.wait(timeout)

    def _run(self) -> None:
        delay = 0.1
        dsn = listener_dsn(self.engine)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.1
                    if self._lost_at is not None:
                        since, self._lost_at = self._lost_at, None
                        self.reconnects += 1
                        self._safely(self.catch_up, since)
                    self._listen(connection)
            except psycopg.Error as error:
                if self.listening.is_set() or self._lost_at is None:
                    log.warning("capacity listener lost its connection (%s); reconnecting", error)
                self._mark_lost()
                self._stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)
        self.listening.clear()

    def _listen(self, connection: psycopg.Connection) -> None:
        last_check = time.monotonic()
        while not self._stop.is_set():
            for notify in connection.notifies(timeout=1.0):
                try:
                    origin, changes = decode(notify.payload)
                except (ValueError, TypeError):
                    log.warning("ignoring a malformed capacity notification")
                    continue
                self._safely(self.on_changes, origin, changes)
            if time.monotonic() - last_check > KEEPALIVE_SECONDS:
                connection.execute("SELECT 1")  # a dead connection raises here (and we reconnect)
                last_check = time.monotonic()
            self._alive_at = datetime.now(UTC)

    def _mark_lost(self) -> None:
        if self.listening.is_set() or self._lost_at is None:
            alive = getattr(self, "_alive_at", None) or datetime.now(UTC)
            self._lost_at = (alive - CATCH_UP_MARGIN).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        self.listening.clear()

    @staticmethod
    def _safely(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - the listener must survive a failing delivery
            log.exception("capacity notification handling failed")
