"""The R4 websocket channel: a client connects to `/fhir/$subscription-websocket` (with its bearer token),
sends `bind <Subscription id>`, gets `bound <id>`, and then `ping <id>` for every notification — followed by
the notification Bundle as JSON when the Subscription's payload is application/fhir+json.

Browsers cannot put an Authorization header on a websocket, so the same channel is also served at
`/capacity/live` (outside /fhir, for the dashboard): there the first message must be `token <access token>`
(verified like the header would be: signature, issuer, audience, expiry; certificate-bound tokens are refused
because no certificate is presented), answered `authenticated`, before `bind` is accepted. The token never
travels in the URL, so it does not end up in access logs."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.fhir.context import Services

PATH = "/fhir/$subscription-websocket"
BROWSER_PATH = "/capacity/live"


class WebSocketRegistry:
    """Which open websockets are bound to which Subscription; safe to call from the notification thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bound: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]]] = defaultdict(set)

    def bind(self, subscription_id: str, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            self._bound[subscription_id].add((loop, queue))

    def unbind_all(self, queue: asyncio.Queue[str]) -> None:
        with self._lock:
            for listeners in self._bound.values():
                for item in [i for i in listeners if i[1] is queue]:
                    listeners.discard(item)

    def bound_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(key for key, listeners in self._bound.items() if listeners)

    def send(self, subscription_id: str, messages: list[str]) -> int:
        with self._lock:
            listeners = list(self._bound.get(subscription_id, ()))
        for loop, queue in listeners:
            for message in messages:
                loop.call_soon_threadsafe(queue.put_nowait, message)
        return len(listeners)


def websocket_endpoint(services: Services, registry: WebSocketRegistry, owner_of: Any,  # type: ignore[no-untyped-def]
                       verify: Any = None):
    """`owner_of(subscription_id)` -> (exists, owner client id or None) for the bind check. `verify(token)` ->
    identity (raises on a bad token): given for the browser route, whose first message carries the token."""

    async def endpoint(websocket: WebSocket) -> None:
        identity = (websocket.scope.get("state") or {}).get("identity")
        await websocket.accept()
        if verify is not None:
            identity = await _authenticate(websocket, verify)
            if identity is None:
                return
        queue: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        receiver = asyncio.ensure_future(websocket.receive_text())
        sender = asyncio.ensure_future(queue.get())
        try:
            while True:
                done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
                if sender in done:
                    await websocket.send_text(sender.result())
                    sender = asyncio.ensure_future(queue.get())
                if receiver in done:
                    reply = await asyncio.to_thread(_command, receiver.result(), identity, owner_of)
                    if reply.startswith("bound "):
                        registry.bind(reply.split(" ", 1)[1], loop, queue)
                    await websocket.send_text(reply)
                    receiver = asyncio.ensure_future(websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            receiver.cancel()
            sender.cancel()
            registry.unbind_all(queue)

    return endpoint


async def _authenticate(websocket: WebSocket, verify: Any) -> Any:
    """The first message of the browser route: `token <access token>`; a wrong one closes with 1008."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), timeout=30)
    except (TimeoutError, WebSocketDisconnect):
        await _close(websocket, "expected 'token <access token>' within 30 s")
        return None
    verb, _, token = text.strip().partition(" ")
    if verb != "token" or not token.strip():
        await _close(websocket, "expected 'token <access token>'")
        return None
    try:
        identity = await asyncio.to_thread(verify, token.strip())
    except Exception as error:  # noqa: BLE001 - any refusal of the verifier is a refusal here
        await _close(websocket, f"token refused: {error}")
        return None
    if getattr(identity, "cert_thumbprint", None):
        await _close(websocket, "a certificate-bound token needs the /fhir websocket over mutual TLS")
        return None
    await websocket.send_text("authenticated")
    return identity


async def _close(websocket: WebSocket, reason: str) -> None:
    try:
        await websocket.send_text(f"error {reason}")
        await websocket.close(code=1008, reason=reason[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass


def _command(text: str, identity: Any, owner_of: Any) -> str:
    verb, _, subscription_id = text.strip().partition(" ")
    subscription_id = subscription_id.strip()
    if verb != "bind" or not subscription_id:
        return "error expected 'bind <Subscription id>'"
    exists, owner = owner_of(subscription_id)
    if not exists:
        return f"error {subscription_id} is not an active websocket Subscription"
    caller = getattr(identity, "client_id", None)
    if owner is not None and caller != owner and not getattr(identity, "insecure_dev", False):
        return f"error {subscription_id} belongs to another client"
    return f"bound {subscription_id}"
