"""max_members of a history room over Redis, from independent clients (``websockets``).

A join there reads Redis before joining; joins arriving together must still
stop at the room's limit, as on a single node.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import websockets

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits
from lucent_ws.policy import RoomPolicy

from ..conftest import require
from .conftest import RedisServer, have_redis_server

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
    aiohttp_server: Any, tmp_path: Path
) -> None:
    require(have_redis_server(), "redis-server on PATH")
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        manager = WebSocketManager(heartbeat=None, policies=POLICIES)
        app = create_app(
            manager=manager,
            redis_url=redis.url,
            redis_prefix="full",
            admin=False,
            limits=Limits(rate_limit=0),
        )
        server = await aiohttp_server(app)
        url = f"ws://127.0.0.1:{server.port}/ws?v=2"
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(websockets.connect(url)) for _ in range(CLIENTS)
            ]
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
    finally:
        redis.stop()
