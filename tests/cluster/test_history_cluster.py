"""History rooms over a broker, two nodes in one process: the memory backend and real Redis.

Clients are fake transports driven through the real Session, so what is counted
is what a v2 client would read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from lucent_ws import WebSocketManager, jsoncodec
from lucent_ws.broker.memory import MemoryBroker, MemoryStore
from lucent_ws.broker.redis import RedisBroker
from lucent_ws.broker.replication import Broker
from lucent_ws.config import Limits
from lucent_ws.connection import Connection
from lucent_ws.envelope import V2, RoomMessage
from lucent_ws.errors import Unavailable
from lucent_ws.policy import RoomPolicy
from lucent_ws.session import Session

from ..conftest import require
from ..fakes import FakeTransport, fake_connect
from ..waiting import wait_until
from .conftest import RedisServer, have_redis_server

POLICIES = [RoomPolicy("h:*", history_size=100, history_ttl=60)]


@dataclass
class Client:
    manager: WebSocketManager
    conn: Connection
    transport: FakeTransport
    session: Session
    refs: int = 0

    async def send(self, **message: Any) -> None:
        await self.session.on_text(jsoncodec.dumps(message).decode())

    def received(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = self.transport.messages()[1:]
        return [m for m in out if kind is None or m.get("type") == kind]

    def offsets(self, room: str) -> list[int]:
        return [m["offset"] for m in self.received("message") if m["room"] == room]


@dataclass
class Cluster:
    """Two or more nodes on one backend, and the backend's failure switches."""

    kind: str
    start_broker: Callable[[WebSocketManager], Awaitable[Broker]]
    fail: Callable[[], Awaitable[None]]
    restart_empty: Callable[[], Awaitable[None]]
    stream_ids: Callable[[str], Awaitable[list[str | None]]]
    brokers: list[Broker] = field(default_factory=list)

    async def node(self) -> WebSocketManager:
        manager = WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES)
        broker = await self.start_broker(manager)
        broker.reconnect_max = 0.2
        self.brokers.append(broker)
        await broker.wait_until_up()
        return manager

    async def client(self, manager: WebSocketManager) -> Client:
        conn, transport = fake_connect(manager, version=V2)
        return Client(manager, conn, transport, Session(manager, conn, Limits()))


@pytest.fixture(params=["memory", "redis"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Cluster]:
    servers: list[RedisServer] = []
    if request.param == "memory":
        store = MemoryStore()

        async def start_memory(manager: WebSocketManager) -> Broker:
            broker = MemoryBroker(store)
            await broker.start(manager)
            return broker

        async def fail_memory() -> None:
            store.fail()

        async def restart_memory() -> None:
            store.fail()
            store.recover(empty=True)

        async def memory_ids(room: str) -> list[str | None]:
            stream = store.stream(room)
            return [] if stream is None else [e.publish_id for e in stream.entries]

        made = Cluster("memory", start_memory, fail_memory, restart_memory, memory_ids)
    else:
        require(have_redis_server(), "redis-server on PATH")
        server = RedisServer(tmp_path)
        server.start()
        servers.append(server)

        async def start_redis(manager: WebSocketManager) -> Broker:
            broker = RedisBroker(server.url, prefix="h", connect_timeout=1.0)
            await broker.start(manager)
            return broker

        async def fail_redis() -> None:
            server.stop()

        async def restart_redis() -> None:
            server.stop()
            server.start()

        async def redis_ids(room: str) -> list[str | None]:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(server.url)
            try:
                entries = await client.xrange(f"h:hist:{room}")
            finally:
                await client.aclose()
            return [f[b"i"].decode() if b"i" in f else None for _, f in entries]

        made = Cluster("redis", start_redis, fail_redis, restart_redis, redis_ids)
    yield made
    for broker in made.brokers:
        await broker.stop()
    for server in servers:
        server.stop()


async def joined(client: Client, room: str, **extra: Any) -> dict[str, Any]:
    client.refs += 1
    ref = client.refs
    await client.send(type="join", room=room, ref=ref, **extra)
    await wait_until(lambda: any(m.get("ref") == ref for m in client.received()))
    return next(m for m in client.received() if m.get("ref") == ref)


async def publish_retrying(manager: WebSocketManager, message: RoomMessage) -> Any:
    """Publish once the backend answers again (a restarted Redis drops the first command)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        try:
            return await manager.publish_confirmed(message)
        except Unavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_offsets_agree_on_both_nodes_in_one_order(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    clients = [await cluster.client(n) for n in (a, a, b, b)]
    for c in clients:
        assert (await joined(c, "h:1"))["offset"] == 0
    per_node = 40

    async def publish(manager: WebSocketManager, tag: str) -> None:
        for i in range(per_node):
            data = jsoncodec.dumps({"from": tag, "i": i})
            await manager.publish_confirmed(RoomMessage("h:1", data))

    await asyncio.gather(publish(a, "a"), publish(b, "b"))
    total = 2 * per_node
    await wait_until(lambda: all(len(c.offsets("h:1")) >= total for c in clients))
    orders = [[m["payload"] for m in c.received("message")] for c in clients]
    for c in clients:
        print(cluster.kind, "client got", len(c.offsets("h:1")), "messages")
        assert c.offsets("h:1") == list(range(1, total + 1))  # none lost, doubled, reordered
    assert all(order == orders[0] for order in orders)  # one order on every node
    assert len(await cluster.stream_ids("h:1")) == total


async def test_a_publish_id_retried_through_the_other_node_is_one_entry(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node(), await cluster.node()
    watcher = await cluster.client(b)
    await joined(watcher, "h:ids")
    first = await a.publish_confirmed(RoomMessage("h:ids", b'"x"'), publish_id="pub-1")
    again = await b.publish_confirmed(RoomMessage("h:ids", b'"x"'), publish_id="pub-1")
    print(cluster.kind, "first", first, "again", again)
    assert not first.duplicate
    assert again.duplicate
    assert (again.offset, again.epoch) == (first.offset, first.epoch)
    await b.publish_confirmed(RoomMessage("h:ids", b'"y"'), publish_id="pub-2")
    await wait_until(lambda: len(watcher.offsets("h:ids")) == 2)
    assert await cluster.stream_ids("h:ids") == ["pub-1", "pub-2"]
    assert watcher.offsets("h:ids") == [1, 2]


async def test_broker_down_a_history_publish_is_unavailable(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    sender, other = await cluster.client(a), await cluster.client(b)
    await joined(sender, "h:down")
    await joined(other, "h:down")
    await cluster.fail()
    await wait_until(lambda: not any(br.up for br in cluster.brokers), what="broker down")
    await sender.send(type="broadcast", room="h:down", payload={"n": 1}, ref=9, id="p9")
    await wait_until(lambda: sender.received("error"))
    error = sender.received("error")[0]
    print(cluster.kind, "broadcast while down:", error)
    assert error["code"] == "unavailable"
    assert error["ref"] == 9
    assert not sender.received("ack")
    with pytest.raises(Unavailable):
        await a.publish_confirmed(RoomMessage("h:down", b"1"))
    assert "h:down" not in a.streams.store or a.streams.store.stats().entries == 0
    assert other.received("message") == []
    assert sender.received("message") == []


async def test_a_backend_restarted_empty_is_one_resync_per_room_per_client(
    cluster: Cluster,
) -> None:
    a, b = await cluster.node(), await cluster.node()
    clients = [await cluster.client(n) for n in (a, b, b)]
    rooms = ["h:r1", "h:r2"]
    for c in clients:
        for room in rooms:
            await joined(c, room)
    for room in rooms:
        for i in range(3):
            await a.publish_confirmed(RoomMessage(room, str(i).encode()))
    await wait_until(lambda: all(len(c.received("message")) == 6 for c in clients))
    old = {room: clients[0].received("message")[-1]["epoch"] for room in rooms}
    await cluster.restart_empty()
    # Each node notices on reconnecting (position check) or on the next message.
    await wait_until(lambda: all(br.up for br in cluster.brokers), what="brokers back")
    for room in rooms:
        published = await publish_retrying(b, RoomMessage(room, b'"after"'))
        assert published.offset == 1
        assert published.epoch != old[room]
    try:
        await wait_until(lambda: all(len(c.received("message")) == 8 for c in clients))
    except AssertionError:
        for c in clients:
            print([(m["type"], m.get("room"), m.get("offset")) for m in c.received()])
        raise
    await asyncio.sleep(0.2)  # room for a wrong second resync to show up
    for c in clients:
        resyncs = c.received("resync")
        print(cluster.kind, "client resyncs:", [(r["room"], r["reason"]) for r in resyncs])
        assert sorted(r["room"] for r in resyncs) == rooms  # exactly one per room
        assert all(r["reason"] == "epoch_changed" and r["recovered"] is False for r in resyncs)
        for room in rooms:
            after = [m for m in c.received("message") if m["room"] == room][-1]
            assert (after["offset"], after["payload"]) == (1, "after")


async def test_recovery_on_the_other_node_replays_from_the_backend(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    publisher = await cluster.client(a)
    first = await joined(publisher, "h:rec")
    for i in range(5):
        await publisher.send(type="broadcast", room="h:rec", payload=i, ref=100 + i)
    await wait_until(lambda: len(publisher.received("ack")) == 5)
    acks = publisher.received("ack")
    assert [m["offset"] for m in acks] == [1, 2, 3, 4, 5]
    epoch = acks[0]["epoch"]
    assert epoch == first["epoch"]
    # A client that saw offset 2 reconnects to node b, which never had a member there.
    late = await cluster.client(b)
    answer = await joined(late, "h:rec", since={"offset": 2, "epoch": epoch})
    print(cluster.kind, "recovery on the other node:", answer)
    assert answer["recovered"] is True
    assert (answer["missed"], answer["offset"]) == (3, 5)
    replay = late.received("message")
    assert [(m["offset"], m["payload"], m.get("replay")) for m in replay] == [
        (3, 2, True),
        (4, 3, True),
        (5, 4, True),
    ]
    await a.publish_confirmed(RoomMessage("h:rec", b'"live"'))
    await wait_until(lambda: len(late.received("message")) == 4)
    assert late.offsets("h:rec") == [3, 4, 5, 6]
    # A second client on b recovers from b's own copy now.
    mirror = await cluster.client(b)
    again = await joined(mirror, "h:rec", since={"offset": 4, "epoch": epoch})
    assert (again["recovered"], again["missed"]) == (True, 2)
    assert mirror.offsets("h:rec") == [5, 6]
    page = await b.fetch_history("h:rec", limit=2)
    assert [m["offset"] for m in page.messages] == [5, 6]
    assert (page.epoch, page.offset) == (epoch, 6)


async def test_the_sync_publish_is_sequenced_with_the_others(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    watcher = await cluster.client(b)
    await joined(watcher, "h:sync")
    for i in range(10):
        published = a.broadcast_to_room("h:sync", i) if i % 2 else None
        if published is None:
            await b.publish_confirmed(RoomMessage("h:sync", str(i).encode()))
    await wait_until(lambda: len(watcher.offsets("h:sync")) == 10)
    print(cluster.kind, "offsets", watcher.offsets("h:sync"))
    assert watcher.offsets("h:sync") == list(range(1, 11))
    assert sorted(m["payload"] for m in watcher.received("message")) == list(range(10))


async def test_a_lost_bus_message_is_filled_from_the_stream() -> None:
    store = MemoryStore()
    managers, brokers = [], []
    for _ in range(2):
        manager = WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES)
        broker = MemoryBroker(store)
        await broker.start(manager)
        managers.append(manager)
        brokers.append(broker)
    try:
        clients = []
        for manager in managers:
            conn, transport = fake_connect(manager, version=V2)
            client = Client(manager, conn, transport, Session(manager, conn, Limits()))
            await joined(client, "h:gap")
            clients.append(client)
        await managers[0].publish_confirmed(RoomMessage("h:gap", b"1"))
        store.drop_history_messages = 2  # offsets 2 and 3 never reach any node
        for i in range(2, 6):
            await managers[0].publish_confirmed(RoomMessage("h:gap", str(i).encode()))
        await wait_until(lambda: all(len(c.offsets("h:gap")) == 5 for c in clients))
        for c, broker in zip(clients, brokers, strict=True):
            filled = broker.history.sequencer.filled_count
            print("memory gap: client got", c.offsets("h:gap"), "filled from the stream", filled)
            assert c.offsets("h:gap") == [1, 2, 3, 4, 5]
            assert [m["payload"] for m in c.received("message")] == [1, 2, 3, 4, 5]
            assert c.received("resync") == []
            assert filled == 2
    finally:
        for broker in brokers:
            await broker.stop()


@pytest.mark.parametrize("cluster", ["redis"], indirect=True)
async def test_redis_flushall_is_one_resync_per_room_per_client(cluster: Cluster) -> None:
    a, b = await cluster.node(), await cluster.node()
    clients = [await cluster.client(n) for n in (a, b)]
    for c in clients:
        await joined(c, "h:f1")
        await joined(c, "h:f2")
    for room in ("h:f1", "h:f2"):
        await a.publish_confirmed(RoomMessage(room, b"1"))
    await wait_until(lambda: all(len(c.received("message")) == 2 for c in clients))
    broker = cluster.brokers[0]
    assert isinstance(broker, RedisBroker)
    await broker.redis.client.flushall()
    # The connections stay up: each node notices on the next message of each room.
    for room in ("h:f1", "h:f2"):
        for i in range(2):
            published = await b.publish_confirmed(RoomMessage(room, str(i).encode()))
            assert published.offset == i + 1
    await wait_until(lambda: all(len(c.received("message")) == 6 for c in clients))
    await asyncio.sleep(0.2)
    for c in clients:
        resyncs = [(r["room"], r["reason"], r["offset"]) for r in c.received("resync")]
        print("redis FLUSHALL: client resyncs", resyncs, "messages", len(c.received("message")))
        assert sorted(resyncs) == [("h:f1", "epoch_changed", 0), ("h:f2", "epoch_changed", 0)]
        assert [m["offset"] for m in c.received("message") if m["room"] == "h:f1"] == [1, 1, 2]
