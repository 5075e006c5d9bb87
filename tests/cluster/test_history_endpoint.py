"""History rooms across two apps sharing a real redis-server, from independent clients
(the ``websockets`` library) on /ws?v=2."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from lucent_ws import WebSocketManager
from lucent_ws.policy import RoomPolicy

from .conftest import RedisServer, serve_over_redis

pytestmark = pytest.mark.redis

POLICIES = [RoomPolicy("h:*", history_size=100, history_ttl=60)]


async def recv(ws: Any) -> dict[str, Any]:
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") != "ping":
            return message  # type: ignore[no-any-return]


async def test_two_nodes_one_sequence_and_recovery_on_the_other(
    aiohttp_server: Any, redis_server: RedisServer
) -> None:
    urls = []
    for _ in range(2):
        manager = WebSocketManager(heartbeat=None, policies=POLICIES)
        urls.append(await serve_over_redis(aiohttp_server, manager, redis_server.url, "e2e"))
    async with (
        websockets.connect(urls[0]) as a,
        websockets.connect(urls[1]) as b,
    ):
        for ws in (a, b):
            assert (await recv(ws))["type"] == "connected"
            await ws.send(json.dumps({"type": "join", "room": "h:e", "ref": 1}))
            assert (await recv(ws))["offset"] == 0
        count = 30
        for i in range(count):
            ws = a if i % 2 else b
            await ws.send(
                json.dumps({"type": "broadcast", "room": "h:e", "payload": i, "ref": 100 + i})
            )
        seen: dict[str, list[tuple[int, Any]]] = {"a": [], "b": []}
        acks: list[int] = []
        for name, ws in (("a", a), ("b", b)):
            # Each client sent half: it gets an ack for each, and the other half as messages.
            own_acks = 0
            while len(seen[name]) < count // 2 or own_acks < count // 2:
                message = await recv(ws)
                if message["type"] == "ack":
                    acks.append(message["offset"])
                    own_acks += 1
                elif message["type"] == "message":
                    seen[name].append((message["offset"], message["payload"]))
        print("acks", len(acks), "a got", len(seen["a"]), "b got", len(seen["b"]))
        assert sorted(acks) == list(range(1, count + 1))  # every offset once, cluster-wide
        for name in ("a", "b"):
            offsets = [o for o, _ in seen[name]]
            assert offsets == sorted(offsets)  # in order on each node
        epoch = (await _history(a))["epoch"]
    # A client of node a, last at offset 10, comes back through node b.
    async with websockets.connect(urls[1]) as again:
        await recv(again)
        await again.send(
            json.dumps(
                {
                    "type": "join",
                    "room": "h:e",
                    "ref": 2,
                    "since": {"offset": 10, "epoch": epoch},
                }
            )
        )
        joined = await recv(again)
        print("recovery through the other node:", joined)
        assert (joined["recovered"], joined["missed"], joined["offset"]) == (True, 20, 30)
        replay = [await recv(again) for _ in range(20)]
        assert [m["offset"] for m in replay] == list(range(11, 31))
        assert all(m["replay"] is True for m in replay)


async def _history(ws: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "history", "room": "h:e", "ref": 3}))
    while True:
        message = await recv(ws)
        if message["type"] == "history":
            assert len(message["messages"]) == 30
            return message


async def test_a_clients_publishes_in_flight_keep_its_order(
    aiohttp_server: Any, redis_server: RedisServer
) -> None:
    """200 broadcasts sent without waiting: published in the order sent, acked in order.

    The session reads on while the backend confirms (publishes share round trips),
    so this shows that doing so neither reorders nor loses a client's publishes.
    """
    manager = WebSocketManager(heartbeat=None, policies=POLICIES)
    url = await serve_over_redis(aiohttp_server, manager, redis_server.url, "inflight")
    async with websockets.connect(url) as sender, websockets.connect(url) as reader:
        for ws in (sender, reader):
            assert (await recv(ws))["type"] == "connected"
            await ws.send(json.dumps({"type": "join", "room": "h:o", "ref": 1}))
            assert (await recv(ws))["type"] == "joined"
        count = 200
        for i in range(count):
            frame = {"type": "broadcast", "room": "h:o", "payload": i, "ref": i, "id": f"o{i}"}
            await sender.send(json.dumps(frame))
        acks = [await recv(sender) for _ in range(count)]
        got = [await recv(reader) for _ in range(count)]
        print("acks", len(acks), "received", len(got), "first", acks[0], "last", acks[-1])
        assert [a["ref"] for a in acks] == list(range(count))
        assert [a["offset"] for a in acks] == list(range(1, count + 1))
        assert [(m["offset"], m["payload"]) for m in got] == [(i + 1, i) for i in range(count)]
