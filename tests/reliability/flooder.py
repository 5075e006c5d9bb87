"""A PING flooder in its own process: ``python -m tests.reliability.flooder PORT RATE SECONDS``.

It opens a WebSocket on a raw socket, sends masked, empty PING frames at RATE
per second (in batches every 5 ms), reads and drops whatever comes back, and
reconnects whenever the server closes it, until SECONDS have passed. It prints
one JSON line: pings sent and connections opened.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time

PING = bytes((0x89, 0x80, 0, 0, 0, 0))  # FIN + PING, masked, empty body
TICK = 0.005


async def one_connection(port: int, per_tick: int, deadline: float, totals: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        writer.close()
        await asyncio.sleep(0.05)
        return
    totals["connections"] += 1
    closed = asyncio.Event()

    async def drain() -> None:
        try:
            while await reader.read(1 << 16):
                pass
        except ConnectionError:
            pass
        closed.set()

    task = asyncio.create_task(drain())
    batch = PING * per_tick
    try:
        while time.monotonic() < deadline and not closed.is_set():
            writer.write(batch)
            totals["pings"] += per_tick
            await asyncio.sleep(TICK)
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
    except ConnectionError:
        pass
    writer.transport.abort()
    task.cancel()


async def main(port: int, rate: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    totals = {"pings": 0, "connections": 0}
    per_tick = max(1, int(rate * TICK))
    while time.monotonic() < deadline:
        try:
            await one_connection(port, per_tick, deadline, totals)
        except (ConnectionError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.01)
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
