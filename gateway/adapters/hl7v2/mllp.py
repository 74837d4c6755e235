"""An MLLP listener (asyncio): reads framed messages from each connection in turn, hands every message to
`handle` (raw message -> ACK bytes; run in a worker thread, it may block on the database) and writes the framed
ACK back. A frame above `max_frame` bytes or without start block gets a NAK and the connection is closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.adapters.hl7v2.ack import AckReason, acknowledgement
from gateway.adapters.hl7v2.framing import END, START, frame

log = logging.getLogger("gateway.mllp")
Handler = Callable[[bytes], bytes]
DEFAULT_MAX_FRAME = 20 * 1024 * 1024


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handler) -> None:
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                data = await reader.readuntil(END)
            except asyncio.IncompleteReadError:
                break  # the peer closed the connection (possibly mid-frame: nothing to answer)
            except asyncio.LimitOverrunError:
                reason = AckReason("too-costly", "the message exceeds the listener's frame limit")
                writer.write(frame(acknowledgement(b"", "AR", reason)))
                await writer.drain()
                break
            start = data.find(START)
            if start < 0:
                reason = AckReason("structure", "MLLP frame without start block (0x0B)")
                writer.write(frame(acknowledgement(data, "AE", reason)))
                await writer.drain()
                break
            message = data[start + 1:-len(END)]
            ack = await asyncio.to_thread(handle, message)
            writer.write(frame(ack))
            await writer.drain()
    except ConnectionError:
        log.info("MLLP connection from %s lost", peer)
    finally:
        writer.close()


async def start_listener(handle: Handler, host: str, port: int,
                         max_frame: int = DEFAULT_MAX_FRAME) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: _connection(r, w, handle), host, port, limit=max_frame)


def run_listener(handle: Handler, host: str, port: int, max_frame: int = DEFAULT_MAX_FRAME) -> None:
    async def main() -> None:
        server = await start_listener(handle, host, port, max_frame)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
