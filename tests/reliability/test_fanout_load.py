"""Fan-out under load: 200 clients in 4 rooms, 200 messages at 20/s from every send path.

Publishers: one server-side ``broadcast_to_room`` publisher per room, one
``broadcast_all`` publisher, one ``send_to`` publisher and four clients that
broadcast over the wire (one per room). Every client must receive exactly what
was addressed to it: nothing lost, nothing twice, each publisher's messages in
the order sent, nothing from another room.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits

from .support import unlimited_session

CLIENTS = 200
ROOMS = ["r0", "r1", "r2", "r3"]
MESSAGES = 200
RATE = 20.0  # messages per second

Key = tuple[str, int]  # (publisher, sequence number)


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, conn_id: str, room: str) -> None:
        self.ws = ws
        self.id = conn_id
        self.room = room
        self.received: list[tuple[Key, str | None]] = []  # (key, room it was tagged with)
        self.fenced = asyncio.Event()
        self.errors: list[Any] = []

    async def read(self) -> None:
        async for msg in self.ws:
            data = msg.json()
            if data.get("fence"):
                self.fenced.set()
            elif data.get("type") == "message":
                payload = data["payload"]
                if data["from"] != payload["pub"] or data["room"] != payload["room"]:
                    self.errors.append(data)
                self.received.append(((payload["pub"], payload["seq"]), data["room"]))
            elif "pub" in data:
                self.received.append(((data["pub"], data["seq"]), data.get("room")))
            else:
                self.errors.append(data)


async def open_client(
    session: aiohttp.ClientSession, url: str, room: str, gate: asyncio.Semaphore
) -> Client:
    async with gate:
        ws = await session.ws_connect(url)
        hello = await ws.receive_json(timeout=10)
        await ws.send_json({"type": "join", "room": room})
        assert await ws.receive_json(timeout=10) == {"type": "joined", "room": room}
    return Client(ws, hello["id"], room)


@pytest.mark.slow
async def test_fanout_under_load_loses_and_duplicates_nothing(aiohttp_server: Any) -> None:
    manager = WebSocketManager(heartbeat=None)
    app = create_app(manager=manager, heartbeat=False, admin=False, limits=Limits())
    server = await aiohttp_server(app)
    url = f"ws://127.0.0.1:{server.port}/ws"
    rng = random.Random(7)
    async with unlimited_session() as session:
        gate = asyncio.Semaphore(50)
        clients = await asyncio.gather(
            *(open_client(session, url, ROOMS[i % 4], gate) for i in range(CLIENTS))
        )
        readers = [asyncio.create_task(c.read()) for c in clients]
        assert manager.get_stats()["rooms"] == dict.fromkeys(ROOMS, CLIENTS // 4)

        expected: dict[str, list[Key]] = {c.id: [] for c in clients}
        by_room = {room: [c for c in clients if c.room == room] for room in ROOMS}
        wire_publishers = [by_room[room][0] for room in ROOMS]
        seq: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(MESSAGES):
            await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
            kind = i % 4
            room = ROOMS[(i // 4) % 4]
            if kind == 0:
                pub = f"room:{room}"
                seq[pub] += 1
                payload = {"pub": pub, "seq": seq[pub], "room": room}
                targets = by_room[room]
                assert manager.broadcast_to_room(room, payload) == len(targets)
            elif kind == 1:
                pub = "all"
                seq[pub] += 1
                payload = {"pub": pub, "seq": seq[pub], "room": None}
                targets = clients
                assert manager.broadcast_all(payload) == CLIENTS
            elif kind == 2:
                pub = "direct"
                seq[pub] += 1
                target = rng.choice(clients)
                payload = {"pub": pub, "seq": seq[pub], "room": None}
                targets = [target]
                assert manager.send_to(target.id, payload)
            else:
                publisher = wire_publishers[(i // 4) % 4]
                pub = publisher.id
                seq[pub] += 1
                payload = {"pub": pub, "seq": seq[pub], "room": publisher.room}
                targets = [c for c in by_room[publisher.room] if c is not publisher]
                await publisher.ws.send_json(
                    {"type": "broadcast", "room": publisher.room, "payload": payload}
                )
            for c in targets:
                expected[c.id].append((pub, seq[pub]))

        # Wire broadcasts are relayed asynchronously: wait until all arrived, then
        # a fence sent last proves nothing more (no duplicate) is on its way.
        async with asyncio.timeout(30):
            while sum(len(c.received) for c in clients) < sum(map(len, expected.values())):
                await asyncio.sleep(0.05)
        manager.broadcast_all({"fence": True})
        async with asyncio.timeout(30):
            await asyncio.gather(*(c.fenced.wait() for c in clients))

        for c in clients:
            assert not c.errors, c.errors[:3]
            keys = [key for key, _ in c.received]
            assert Counter(keys) == Counter(expected[c.id]), f"client {c.id} lost or got extra"
            assert len(set(keys)) == len(keys), "duplicate delivery"
            last: dict[str, int] = {}
            for pub, n in keys:
                assert n > last.get(pub, 0), f"publisher {pub} out of order at {c.id}"
                last[pub] = n
            assert all(room in (None, c.room) for _, room in c.received), "crossed rooms"

        total = sum(map(len, expected.values()))
        assert total > 10_000  # the scenario really fanned out
        print(f"\nFIGURE fanout: {CLIENTS} clients, {MESSAGES} messages, {total} deliveries")
        for c in clients:
            await c.ws.close()
        await asyncio.gather(*readers)
    assert manager.get_stats()["connections"] == 0


async def test_fanout_check_detects_a_crossed_room(aiohttp_server: Any) -> None:
    """The checks above can fail: a message sent to the wrong room is seen."""
    manager = WebSocketManager(heartbeat=None)
    server = await aiohttp_server(create_app(manager=manager, heartbeat=False, admin=False))
    url = f"ws://127.0.0.1:{server.port}/ws"
    async with unlimited_session() as session:
        gate = asyncio.Semaphore(2)
        a, b = [await open_client(session, url, room, gate) for room in ("r0", "r1")]
        readers = [asyncio.create_task(c.read()) for c in (a, b)]
        manager.send_to(a.id, {"pub": "room:r1", "seq": 1, "room": "r1"})
        manager.broadcast_all({"fence": True})
        await asyncio.gather(a.fenced.wait(), b.fenced.wait())
        assert not all(room in (None, a.room) for _, room in a.received)
        for c in (a, b):
            await c.ws.close()
        await asyncio.gather(*readers)
