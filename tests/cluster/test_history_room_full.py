"""max_members of a history room over Redis, from independent clients (``websockets``).

A join there reads Redis before joining; joins arriving together must still
stop at the room's limit, as on a single node.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

import pytest
import websockets

from lucent_ws import WebSocketManager
from lucent_ws.policy import RoomPolicy

from .conftest import RedisServer, serve_over_redis

pytestmark = pytest.mark.redis

LIMIT = 5
CLIENTS = 20
POLICIES = [RoomPolicy("h:*", history_size=100, history_ttl=60, max_members=LIMIT)]


async def answer(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") in ("joined", "error"):
            return message  # type: ignore[no-any-return]


async def test_joins_arriving_together_stop_at_max_members(
    aiohttp_server: Any, redis_server: RedisServer
) -> None:
    manager = WebSocketManager(heartbeat=None, policies=POLICIES)
    url = await serve_over_redis(aiohttp_server, manager, redis_server.url, "full")
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(websockets.connect(url)) for _ in range(CLIENTS)]
        for ws in clients:
            assert json.loads(await ws.recv())["type"] == "connected"
        join = json.dumps({"type": "join", "room": "h:full", "ref": 1})
        await asyncio.gather(*(ws.send(join) for ws in clients))
        answers = await asyncio.gather(*(answer(ws) for ws in clients))
    joined = sum(1 for a in answers if a["type"] == "joined")
    full = sum(1 for a in answers if a.get("code") == "room_full")
    print(f"{CLIENTS} joins at once, max_members {LIMIT}: joined {joined}, room_full {full}")
    assert joined == LIMIT
    assert full == CLIENTS - LIMIT
