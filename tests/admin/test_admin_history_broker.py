"""The admin API and the /ws endpoint on history rooms numbered by a broker (in-process bus).

Node A is a real app (aiohttp test server, real WebSocket clients); node B a
manager on the same in-process bus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.broker.memory import MemoryBroker, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.envelope import RoomMessage
from lucent_ws.policy import RoomPolicy
from tests.conftest import Peer, open_peer

from ..waiting import wait_until
from .conftest import AUTH, TOKEN

POLICIES = [RoomPolicy("h:*", history_size=50, history_ttl=60)]


@pytest.fixture
async def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def node_b(store: MemoryStore) -> AsyncIterator[tuple[WebSocketManager, MemoryBroker]]:
    manager = WebSocketManager(heartbeat=None, policies=POLICIES)
    broker = MemoryBroker(store, node_id="node-b")
    broker.reconnect_max = 0.2
    await broker.start(manager)
    await broker.wait_until_up()
    yield manager, broker
    await broker.stop()


async def test_admin_and_clients_share_one_history_with_the_other_node(
    aiohttp_client: Any,
    peers: list[Peer],
    store: MemoryStore,
    node_b: tuple[WebSocketManager, MemoryBroker],
) -> None:
    manager_b, _ = node_b
    manager_a = WebSocketManager(heartbeat=None, policies=POLICIES)
    broker_a = MemoryBroker(store, node_id="node-a")
    broker_a.reconnect_max = 0.2
    app = create_app(
        manager=manager_a, broker=broker_a, admin_token=TOKEN, limits=Limits(rate_limit=0)
    )
    client = await aiohttp_client(app)
    await broker_a.wait_until_up()
    peer = await open_peer(client, "/ws?v=2")
    peers.append(peer)
    joined = await peer.request({"type": "join", "room": "h:1", "ref": 1})
    assert (joined["type"], joined["offset"]) == ("joined", 0)

    async with client.post(
        "/admin/broadcast", json={"room": "h:1", "payload": {"n": 1}}, headers=AUTH
    ) as resp:
        first = await resp.json()
    assert (resp.status, first["offset"], first["epoch"]) == (200, 1, joined["epoch"])
    await manager_b.publish_confirmed(RoomMessage("h:1", b'{"n":2}'))
    await peer.send({"type": "broadcast", "room": "h:1", "payload": {"n": 3}, "ref": 7})
    got: list[Any] = []
    while len(got) < 3:
        message = await peer.recv()
        got.append(message)
    ack = next(m for m in got if m["type"] == "ack")
    assert (ack["offset"], ack["epoch"]) == (3, joined["epoch"])
    live = [(m["offset"], m["payload"]) for m in got if m["type"] == "message"]
    assert live == [(1, {"n": 1}), (2, {"n": 2})]  # its own broadcast is not echoed

    async with client.get("/admin/rooms/h:1/history", headers=AUTH) as resp:
        page = await resp.json()
    print("admin history page:", [(m["offset"], m["payload"]) for m in page["messages"]])
    assert [m["payload"] for m in page["messages"]] == [{"n": 1}, {"n": 2}, {"n": 3}]
    history = await peer.request({"type": "history", "room": "h:1", "limit": 2, "ref": 8})
    assert [m["offset"] for m in history["messages"]] == [2, 3]

    store.fail()
    await wait_until(lambda: not broker_a.up, what="node A saw the outage")
    async with client.post(
        "/admin/broadcast", json={"room": "h:1", "payload": {"n": 4}}, headers=AUTH
    ) as resp:
        down = await resp.json()
    print("admin broadcast while down:", resp.status, down)
    assert (resp.status, down["error"]) == (503, "unavailable")
    async with client.get("/admin/rooms/h:1/history", headers=AUTH) as resp:
        assert resp.status == 503
    error = await peer.request(
        {"type": "broadcast", "room": "h:1", "payload": {"n": 5}, "ref": 9, "id": "x"}
    )
    assert (error["type"], error["code"], error["ref"]) == ("error", "unavailable", 9)
    # A room without history still publishes locally while the broker is down.
    await peer.request({"type": "join", "room": "plain", "ref": 10})
    async with client.post(
        "/admin/broadcast", json={"room": "plain", "payload": 1}, headers=AUTH
    ) as resp:
        assert (resp.status, (await resp.json())["delivered"]) == (200, 1)
    plain = await peer.recv()
    assert (plain["room"], plain["payload"], "offset" in plain) == ("plain", 1, False)
    store.recover()
    await wait_until(lambda: broker_a.up, what="node A reconnected")
    retry = await peer.request(
        {"type": "broadcast", "room": "h:1", "payload": {"n": 5}, "ref": 11, "id": "x"}
    )
    assert (retry["type"], retry["offset"]) == ("ack", 4)
