"""Churn and leaks: 20 cycles of 500 clients connecting, joining and leaving.

Half leave with a close handshake, half abruptly (TCP abort), some of those
in the middle of a broadcast burst. After each cycle the manager holds
nothing, the event loop's task count is back to its baseline, and the
process RSS at cycle 20 is within 10% of cycle 5. Server and clients share
this process; RSS is read after a full garbage collection.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import aiohttp
import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits

from ..waiting import wait_until
from .support import RawClient, rss_bytes, unlimited_session

CYCLES = 20
CLIENTS = 500
ROOMS = 10
BURST = 20


async def polite(session: aiohttp.ClientSession, url: str, room: str) -> Any:
    ws = await session.ws_connect(url)
    await ws.receive_json(timeout=10)
    await ws.send_json({"type": "join", "room": room})
    return ws


async def abrupt(port: int, room: str) -> RawClient:
    raw = await RawClient.connect(port)
    await raw.read_frame()
    raw.send_frame(0x1, b'{"type":"join","room":"%s"}' % room.encode())
    return raw


async def drain_reader(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in ws:
        pass


@pytest.mark.slow
async def test_churn_leaves_nothing_behind(aiohttp_server: Any) -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    app = create_app(manager=manager, heartbeat=False, admin=False, limits=Limits(rate_limit=0))
    server = await aiohttp_server(app)
    url = f"ws://127.0.0.1:{server.port}/ws"
    rss: list[int] = []
    baseline_tasks = len(asyncio.all_tasks())
    async with unlimited_session() as session:
        gate = asyncio.Semaphore(100)

        async def gated(factory: Any) -> Any:
            async with gate:
                return await factory

        for cycle in range(1, CYCLES + 1):
            rooms = [f"room{i % ROOMS}" for i in range(CLIENTS)]
            politely = await asyncio.gather(
                *(gated(polite(session, url, r)) for r in rooms[: CLIENTS // 2])
            )
            rudely = await asyncio.gather(
                *(gated(abrupt(server.port, r)) for r in rooms[CLIENTS // 2 :])
            )
            await wait_until(lambda: sum(manager.get_stats()["rooms"].values()) == CLIENTS, 30)
            readers = [asyncio.create_task(drain_reader(ws)) for ws in politely]

            # A burst of broadcasts; a fifth of the abrupt clients die in the middle.
            for i in range(BURST):
                manager.broadcast_all({"cycle": cycle, "i": i, "pad": "p" * 1000})
                if i == BURST // 2:
                    for raw in rudely[::5]:
                        raw.abort()
                await asyncio.sleep(0)
            for raw in rudely:
                raw.abort()
            await asyncio.gather(*(ws.close() for ws in politely))
            await asyncio.gather(*readers)

            await wait_until(lambda: len(manager) == 0, 30)
            stats = manager.get_stats()
            assert stats["connections"] == 0
            assert stats["rooms"] == {}
            assert manager.list_rooms() == []
            assert manager.connection_ids() == []
            await wait_until(lambda: len(asyncio.all_tasks()) <= baseline_tasks, 30)
            del politely, rudely, readers
            gc.collect()
            rss.append(rss_bytes())

    growth = rss[CYCLES - 1] / rss[4] - 1
    print(
        f"\nFIGURE churn: {CYCLES} cycles x {CLIENTS} clients, RSS cycle 5 "
        f"{rss[4] / 2**20:.1f} MiB, cycle 20 {rss[-1] / 2**20:.1f} MiB ({growth:+.1%})"
    )
    assert growth < 0.10, [round(r / 2**20, 1) for r in rss]
