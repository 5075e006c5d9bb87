"""History rooms over a broker when things break: a node's subscription drops, Redis
pauses, a node dies mid-stream and its publisher retries through the other node."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from lucent_ws import WebSocketManager
from lucent_ws.broker.memory import MemoryBackend, MemoryBroker, MemoryStore
from lucent_ws.broker.redis import RedisBroker
from lucent_ws.broker.replication import Broker
from lucent_ws.config import Limits
from lucent_ws.envelope import V2, RoomMessage
from lucent_ws.errors import Unavailable
from lucent_ws.session import Session

from ..fakes import fake_connect
from ..waiting import wait_until
from .conftest import RedisServer
from .test_history_cluster import POLICIES, Client, joined

ROOM = "h:faults"


async def node(broker: Broker) -> WebSocketManager:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES)
    broker.reconnect_max = 0.2
    await broker.start(manager)
    await broker.wait_until_up()
    return manager


def client(manager: WebSocketManager) -> Client:
    conn, transport = fake_connect(manager, version=V2)
    return Client(manager, conn, transport, Session(manager, conn, Limits()))


@pytest.fixture
async def brokers() -> AsyncIterator[list[Broker]]:
    started: list[Broker] = []
    yield started
    for broker in started:
        await broker.stop()


async def test_a_node_that_lost_its_subscription_catches_up_from_the_stream(
    brokers: list[Broker],
) -> None:
    store = MemoryStore()
    brokers += [MemoryBroker(store), MemoryBroker(store)]
    a, b = await node(brokers[0]), await node(brokers[1])
    watcher = client(b)
    await joined(watcher, ROOM)
    await a.publish_confirmed(RoomMessage(ROOM, b"1"))
    await wait_until(lambda: watcher.offsets(ROOM) == [1])
    backend = brokers[1].backend
    assert isinstance(backend, MemoryBackend)
    backend.drop_subscription()  # b misses what a publishes until it resubscribes
    for i in range(2, 7):
        await a.publish_confirmed(RoomMessage(ROOM, str(i).encode()))
    await wait_until(lambda: len(watcher.offsets(ROOM)) == 6, what="b caught up")
    filled = brokers[1].history.sequencer.filled_count
    print("offsets on b", watcher.offsets(ROOM), "read back from the stream", filled)
    assert watcher.offsets(ROOM) == [1, 2, 3, 4, 5, 6]
    assert [m["payload"] for m in watcher.received("message")] == [1, 2, 3, 4, 5, 6]
    assert watcher.received("resync") == []
    assert filled >= 1


async def test_a_dead_node_publisher_retries_through_the_other_once_each(
    brokers: list[Broker],
) -> None:
    store = MemoryStore()
    brokers += [MemoryBroker(store), MemoryBroker(store)]
    a, b = await node(brokers[0]), await node(brokers[1])
    watchers = [client(b), client(b)]
    for w in watchers:
        await joined(w, ROOM)
    ids = [f"id-{i}" for i in range(40)]
    for pid in ids[:25]:
        await a.publish_confirmed(RoomMessage(ROOM, f'"{pid}"'.encode()), publish_id=pid)
    # Node a dies without a word: its broker stops dead, nothing flushed.
    task = brokers[0]._task
    assert task is not None
    task.cancel()
    # The publisher does not know how far it got: it retries everything through b.
    duplicates = 0
    for pid in ids[20:]:
        published = await b.publish_confirmed(
            RoomMessage(ROOM, f'"{pid}"'.encode()), publish_id=pid
        )
        duplicates += published.duplicate
    await wait_until(lambda: all(len(w.offsets(ROOM)) == 40 for w in watchers))
    stream = store.stream(ROOM)
    assert stream is not None
    print("retried 20, duplicates", duplicates, "stream entries", len(stream.entries))
    assert duplicates == 5
    assert [e.publish_id for e in stream.entries] == ids  # one entry per publish id
    for w in watchers:
        assert w.offsets(ROOM) == list(range(1, 41))  # 0 lost, doubled or reordered
        assert [m["payload"] for m in w.received("message")] == ids


@pytest.mark.redis
async def test_redis_paused_loses_nothing_for_connected_clients(
    brokers: list[Broker], redis_server: RedisServer
) -> None:
    brokers += [
        RedisBroker(redis_server.url, prefix="p"),
        RedisBroker(redis_server.url, prefix="p"),
    ]
    a, b = await node(brokers[0]), await node(brokers[1])
    watchers = [client(a), client(b)]
    for w in watchers:
        await joined(w, ROOM)
    admin = aioredis.Redis.from_url(redis_server.url)
    published, refused = 0, 0

    async def publish_for(seconds: float, manager: WebSocketManager) -> None:
        nonlocal published, refused
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        i = 0
        while loop.time() < end:
            i += 1
            try:
                await manager.publish_confirmed(RoomMessage(ROOM, str(i).encode()))
                published += 1
            except Unavailable:
                refused += 1
            await asyncio.sleep(0.01)

    pausing = asyncio.create_task(publish_for(2.5, a))
    other = asyncio.create_task(publish_for(2.5, b))
    await asyncio.sleep(0.3)
    await admin.execute_command("CLIENT", "PAUSE", "1500")
    await asyncio.gather(pausing, other)
    await admin.aclose()
    await wait_until(lambda: all(len(w.offsets(ROOM)) == published for w in watchers))
    for w in watchers:
        print(
            "pause: published", published, "refused", refused,
            "client got", len(w.offsets(ROOM)), "resyncs", len(w.received("resync")),
        )  # fmt: skip
        assert w.offsets(ROOM) == list(range(1, published + 1))
        assert w.received("resync") == []
