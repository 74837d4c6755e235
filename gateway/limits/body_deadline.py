"""ASGI middleware: a request body must arrive within `seconds` (slowloris-style slow bodies would otherwise
hold a worker and a database-free coroutine forever). When the deadline passes, the client gets
`408 Request Timeout` as an OperationOutcome and whatever the application tried to answer is dropped."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.limits.outcome import send_outcome


class BodyDeadlineMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds
        expired = body_complete = False

        async def receive_before_deadline() -> Message:
            nonlocal expired, body_complete
            if body_complete:  # e.g. a streaming response listening for a disconnect: no deadline then
                return await receive()
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                expired = True
                return {"type": "http.disconnect"}
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def send_unless_expired(message: Message) -> None:
            if not expired:
                await send(message)

        await self.app(scope, receive_before_deadline, send_unless_expired)
        if expired:
            await send_outcome(send, 408, "timeout",
                               f"the request body did not arrive within {self.seconds:g} seconds",
                               {"Connection": "close"})
