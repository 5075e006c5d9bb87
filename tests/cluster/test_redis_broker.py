"""RedisBroker against a real redis-server: managers on one loop, fake transports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from lucent_ws import WebSocketManager
from lucent_ws.broker.redis import RedisBroker

from ..fakes import FakeTransport, fake_connect
from ..waiting import wait_until
from .conftest import RedisServer

pytestmark = pytest.mark.redis

Node = tuple[WebSocketManager, RedisBroker]
NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(shared_redis_url: str, prefix: str) -> AsyncIterator[NodeFactory]:
    started: list[RedisBroker] = []

    async def start(url: str = shared_redis_url, **kwargs: Any) -> Node:
        kwargs.setdefault("prefix", prefix)
        kwargs.setdefault("reconnect_max", 0.5)
        manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
        broker = RedisBroker(url, **kwargs)
        started.append(broker)
        await broker.start(manager)
        return manager, broker

    yield start
    for broker in started:
        await broker.stop()


def received(transport: FakeTransport) -> list[Any]:
    return transport.messages()[1:]


async def settled(*nodes: Node) -> None:
    """Every node sees every connection of every other node."""
    total = sum(len(manager) for manager, _ in nodes)

    def agree() -> bool:
        return all(m.get_stats()["connections"] == total for m, _ in nodes)

    await wait_until(agree, what="membership replicated")


async def test_room_broadcast_reaches_members_on_every_node(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    a_conn, a_t = fake_connect(a[0])
    b_conn, b_t = fake_connect(b[0])
    b2_conn, b2_t = fake_connect(b[0])
    for manager, conn in ((a[0], a_conn), (b[0], b_conn), (b[0], b2_conn)):
        manager.join_room(conn.id, "posts")
    await wait_until(lambda: a[0].room_size("posts") == 3 and b[0].room_size("posts") == 3)
    assert a[0].broadcast_to_room("posts", {"n": 1}, exclude=[b2_conn.id]) == 2
    await wait_until(lambda: received(b_t) == [{"n": 1}])
    assert received(a_t) == [{"n": 1}]  # its own echo is ignored: once, not twice
    assert received(b2_t) == []
    assert b[0].broadcast_all({"n": 2}, exclude=[a_conn.id]) == 2
    await wait_until(lambda: received(b2_t) == [{"n": 2}])
    assert received(a_t) == [{"n": 1}]
    assert received(b_t) == [{"n": 1}, {"n": 2}]


async def test_direct_send_and_kick_reach_the_owning_node(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    target, transport = fake_connect(b[0])
    await settled(a, b)
    assert a[0].send_to(target.id, {"hello": "there"}) is True
    await wait_until(lambda: received(transport) == [{"hello": "there"}])
    assert a[0].disconnect(target.id) is True
    await wait_until(lambda: b[0].get_connection(target.id) is None)
    await wait_until(lambda: transport.close_codes == [4001] or transport.aborted)
    await wait_until(lambda: a[0].get_stats()["connections"] == 0)
    assert a[0].send_to(target.id, 1) is False
    assert a[0].disconnect(target.id) is False
    assert b[0].local_stats()["evictions"]["kick"] == 1


async def test_per_publisher_order_is_kept(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    conn, transport = fake_connect(b[0])
    b[0].join_room(conn.id, "feed")
    await wait_until(lambda: a[0].room_size("feed") == 1)
    for i in range(2000):
        a[0].broadcast_to_room("feed", i)
        if i % 300 == 0:
            await asyncio.sleep(0)  # let several batches form
    await wait_until(lambda: len(received(transport)) == 2000)
    assert received(transport) == list(range(2000))


async def test_membership_meta_and_stats_agree_on_every_node(make_node: NodeFactory) -> None:
    nodes = [await make_node() for _ in range(3)]
    conns = []
    for i, (manager, _) in enumerate(nodes):
        for j in range(i + 1):
            conn, _ = fake_connect(manager, meta={"userId": i * 10 + j})
            manager.join_room(conn.id, "all")
            manager.join_room(conn.id, f"room-{i}")
            conns.append(conn.id)
    nodes[2][0].set_meta(conns[-1], "role", "admin")
    await settled(*nodes)

    def views() -> list[tuple[Any, ...]]:
        return [
            (
                sorted(m.get_room_members("all")),
                sorted(m.list_rooms()),
                m.get_stats()["rooms"],
                m.get_stats()["connections"],
                m.get_meta(conns[-1], "role"),
            )
            for m, _ in nodes
        ]

    await wait_until(lambda: all(v == views()[0] for v in views()))
    members, rooms, room_stats, total, role = views()[0]
    assert members == sorted(conns)
    assert rooms == ["all", "room-0", "room-1", "room-2"]
    assert room_stats == {"all": 6, "room-0": 1, "room-1": 2, "room-2": 3}
    assert (total, role) == (6, "admin")
    assert nodes[0][0].get_meta(conns[1], "userId") == 10
    assert nodes[0][0].get_connection_rooms(conns[-1]) == ["all", "room-2"]
    stats = nodes[0][0].get_stats()
    assert stats["node"] == nodes[0][1].node_id
    assert stats["broker"] == "up"
    per_node = stats["nodes"]
    assert {n: f["connections"] for n, f in per_node.items()} == {
        broker.node_id: len(manager) for manager, broker in nodes
    }
    assert [n for n, f in per_node.items() if f["self"]] == [nodes[0][1].node_id]
    # leaving is replicated too
    nodes[2][0].remove(conns[-1])
    await wait_until(lambda: all(m.room_size("all") == 5 for m, _ in nodes))


async def test_a_node_started_later_learns_the_existing_membership(
    make_node: NodeFactory,
) -> None:
    a = await make_node()
    conn, _ = fake_connect(a[0])
    a[0].join_room(conn.id, "early")
    await asyncio.sleep(0)
    b = await make_node()
    await wait_until(lambda: b[0].get_room_members("early") == [conn.id])


async def test_a_stopped_node_leaves_at_once(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    fake_connect(b[0])
    await settled(a, b)
    await b[1].stop()
    await wait_until(lambda: a[0].get_stats()["connections"] == 0, timeout=2)
    assert b[1].node_id not in a[0].get_stats()["nodes"]


async def test_a_dead_node_drops_out_within_its_lease(make_node: NodeFactory) -> None:
    lease = 1.5
    a = await make_node(lease=lease)
    b = await make_node(lease=lease)
    conn, _ = fake_connect(b[0])
    b[0].join_room(conn.id, "posts")
    await settled(a, b)
    # Die without a word: the tasks stop, nothing is deregistered.
    task = b[1]._task
    assert task is not None
    task.cancel()
    died = time.monotonic()
    await wait_until(lambda: a[0].get_room_members("posts") == [], timeout=lease + 1)
    assert time.monotonic() - died <= lease + 0.2
    stats = a[0].get_stats()
    assert stats["connections"] == 0
    assert stats["rooms"] == {}
    assert list(stats["nodes"]) == [a[1].node_id]
    assert a[0].send_to(conn.id, 1) is False


async def test_redis_outage_serves_locally_counts_undelivered_and_recovers(
    make_node: NodeFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a = await make_node(redis_server.url)
    b = await make_node(redis_server.url)
    a_conn, a_t = fake_connect(a[0])
    b_conn, b_t = fake_connect(b[0])
    a[0].join_room(a_conn.id, "posts")
    b[0].join_room(b_conn.id, "posts")
    await wait_until(lambda: a[0].room_size("posts") == 2 and b[0].room_size("posts") == 2)

    caplog.set_level(logging.INFO, logger="lucent_ws.broker")
    redis_server.stop()
    await wait_until(lambda: not a[1].up and not b[1].up)
    # Local clients are still served; nothing is claimed for the other node.
    assert a[0].broadcast_to_room("posts", "during") == 1
    assert a[0].send_to(b_conn.id, "direct") is False
    assert a[0].get_stats()["broker"] == "down"
    assert a[0].get_stats()["undelivered"] == 2
    await wait_until(lambda: received(a_t) == ["during"])
    for _ in range(3):  # several failed reconnects
        await asyncio.sleep(0.3)
    outage_logs = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len([r for r in outage_logs if r.name == "lucent_ws.broker" and r.levelno >= 40]) == 2

    redis_server.start()  # empty: it lost everything
    await a[1].wait_until_up()
    await b[1].wait_until_up()
    await wait_until(lambda: a[0].room_size("posts") == 2 and b[0].room_size("posts") == 2)
    assert a[0].broadcast_to_room("posts", "after") == 2
    await wait_until(lambda: received(b_t) == ["after"])
    assert "during" not in received(b_t)
    assert any("reachable again" in r.getMessage() for r in caplog.records)


async def test_a_node_starts_while_redis_is_down_and_joins_later(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    redis_server.stop()
    a = await make_node(redis_server.url)
    assert a[1].up is False
    conn, transport = fake_connect(a[0])
    a[0].join_room(conn.id, "posts")
    assert a[0].broadcast_to_room("posts", 1) == 1
    redis_server.start()
    await a[1].wait_until_up()
    b = await make_node(redis_server.url)
    await wait_until(lambda: b[0].get_room_members("posts") == [conn.id])
    assert b[0].broadcast_to_room("posts", 2) == 1
    await wait_until(lambda: received(transport) == [1, 2])


async def test_a_malformed_membership_record_is_skipped_not_fatal(
    make_node: NodeFactory, shared_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis.asyncio as aioredis

    a = await make_node()
    good, _ = fake_connect(a[0])
    a[0].join_room(good.id, "ok")
    client = aioredis.from_url(shared_redis_url)
    try:
        key = f"{a[1].redis.prefix}:conns:{a[1].node_id}"
        await wait_until(lambda: client.hexists(key, good.id), what="record written")
        await client.hset(key, "not-a-connection", b"{not json")
        with caplog.at_level(logging.WARNING, logger="lucent_ws.broker"):
            b = await make_node()
            await wait_until(lambda: b[0].get_room_members("ok") == [good.id])
        assert any("malformed" in r.getMessage() for r in caplog.records)
        assert b[0].get_remote_connection("not-a-connection") is None
    finally:
        await client.aclose()


async def test_bytes_into_redis_per_join_do_not_grow_with_the_rooms_a_connection_is_in(
    make_node: NodeFactory, shared_redis_url: str
) -> None:
    import redis.asyncio as aioredis

    a = await make_node(lease=60)  # no lease renewal during the measurement
    few, _ = fake_connect(a[0])
    many, _ = fake_connect(a[0])
    for i in range(99):
        a[0].join_room(many.id, f"a-rather-long-room-name-to-make-records-heavy-{i:03d}")
    client = aioredis.from_url(shared_redis_url)

    async def input_bytes() -> int:
        info = await client.info("stats")
        return int(info["total_net_input_bytes"])

    async def cost(conn_id: str) -> int:
        await asyncio.sleep(0.1)
        before = await input_bytes()
        for _ in range(20):
            a[0].join_room(conn_id, "probe")
            await asyncio.sleep(0.005)
            a[0].leave_room(conn_id, "probe")
            await asyncio.sleep(0.005)
        await wait_until(lambda: not a[1]._queue)
        await asyncio.sleep(0.1)
        # Subtract this measurement's own INFO command.
        return await input_bytes() - before

    try:
        small, large = await cost(few.id), await cost(many.id)
    finally:
        await client.aclose()
    print(f"FIGURE bytes into Redis for 20 joins + 20 leaves: 0 other rooms {small}, 99 {large}")
    assert large <= small * 1.1 + 200
