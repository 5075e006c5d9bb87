"""The backends' history primitives: the Redis scripts on a real redis-server, and the
in-process backend with the same semantics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from lucent_ws.broker import wire
from lucent_ws.broker.backend import Backend, HistoryAppend
from lucent_ws.broker.memory import MemoryBackend, MemoryStore
from lucent_ws.broker.redis import RedisBackend
from lucent_ws.envelope import RoomMessage

from ..conftest import require
from ..waiting import wait_until
from .conftest import have_redis_server


def request(
    room: str,
    payload: bytes,
    *,
    pid: str | None = None,
    size: int = 100,
    ttl: float = 60.0,
    epoch: str = "aaaa",
    sender: str | None = None,
    exclude: tuple[str, ...] = (),
) -> HistoryAppend:
    prefix, suffix = wire.room_frame_parts("n1", RoomMessage(room, payload, sender), exclude)
    return HistoryAppend(room, payload, sender, exclude, pid, size, ttl, epoch, prefix, suffix)


@pytest.fixture(params=["memory", "redis"])
async def backend(
    request: pytest.FixtureRequest, shared_redis_url: Any, prefix: str
) -> AsyncIterator[Backend]:
    made: Backend
    if request.param == "memory":
        made = MemoryBackend(MemoryStore())
    else:
        require(have_redis_server(), "redis-server on PATH")
        made = RedisBackend(shared_redis_url, prefix=prefix)
    await made.connect()
    yield made
    await made.close()


async def next_bus(backend: Backend) -> bytes:
    async with asyncio.timeout(5):
        async for message in backend.messages():
            return message
    raise AssertionError("bus ended")


async def test_append_assigns_offsets_and_publishes_the_frame(backend: Backend) -> None:
    first = await backend.append(request("r", b'{"a":1}', sender="c1", exclude=("c1",)))
    frame = await next_bus(backend)
    header, body = wire.decode(frame)
    message = wire.decode_room(header, body)
    print("bus frame", frame)
    assert (first.offset, first.epoch, first.duplicate) == (1, "aaaa", False)
    assert message == RoomMessage("r", b'{"a":1}', "c1", 1, "aaaa")
    assert header["x"] == ["c1"]
    second = await backend.append(request("r", b"2", epoch="bbbb"))
    assert (second.offset, second.epoch) == (2, "aaaa")  # the fresh epoch only starts a room
    read = await backend.read("r", 0, 10, "cccc", 60)
    assert (read.epoch, read.top) == ("aaaa", 2)
    assert [(e.offset, e.payload, e.sender, e.exclude) for e in read.entries] == [
        (1, b'{"a":1}', "c1", ("c1",)),
        (2, b"2", None, ()),
    ]
    assert [e.offset for e in (await backend.read("r", 1, 10, "cccc", 60)).entries] == [2]
    assert (await backend.read("r", 0, 1, "cccc", 60)).entries[0].offset == 1


async def test_a_repeated_publish_id_appends_and_publishes_nothing(backend: Backend) -> None:
    first = await backend.append(request("r", b"1", pid="x"))
    await next_bus(backend)
    again = await backend.append(request("r", b"1", pid="x"))
    assert again == (first.offset, first.epoch, True)
    third = await backend.append(request("r", b"3", pid="y"))
    assert third.offset == 2
    frame = await next_bus(backend)
    assert wire.decode(frame)[0]["o"] == 2  # the duplicate published nothing
    read = await backend.read("r", 0, 10, "z", 60)
    assert [e.publish_id for e in read.entries] == ["x", "y"]


async def test_read_of_an_unknown_room_creates_its_position(backend: Backend) -> None:
    read = await backend.read("new", 0, 10, "ffff", 60)
    assert (read.epoch, read.top, read.entries) == ("ffff", 0, [])
    assert (await backend.read("new", 0, 10, "gggg", 60)).epoch == "ffff"
    appended = await backend.append(request("new", b"1", epoch="hhhh"))
    assert (appended.offset, appended.epoch) == (1, "ffff")


async def test_the_stream_is_trimmed_to_about_its_size(backend: Backend) -> None:
    for i in range(300):
        await backend.append(request("big", str(i).encode(), size=10))
    read = await backend.read("big", 0, 1000, "x", 60)
    print("kept", len(read.entries), "of 300 with history_size 10")
    assert read.top == 300
    assert 10 <= len(read.entries) < 300
    assert read.entries[-1].offset == 300
    offsets = [e.offset for e in read.entries]
    assert offsets == list(range(offsets[0], 301))


@pytest.mark.redis
async def test_redis_keys_have_ttls_and_a_lost_position_is_a_new_epoch(
    shared_redis_url: str, prefix: str
) -> None:
    require(have_redis_server(), "redis-server on PATH")
    backend = RedisBackend(shared_redis_url, prefix=prefix)
    await backend.connect()
    client = aioredis.Redis.from_url(shared_redis_url)
    try:
        await backend.append(request("t", b"1", pid="p", ttl=30))
        keys = backend.history_keys("t")
        ttls = [await client.pttl(key) for key in keys]
        print("TTLs (ms) of position, stream, ids:", ttls)
        assert all(0 < ttl <= 30_000 for ttl in ttls)
        assert await client.hgetall(keys[0]) == {b"e": b"aaaa", b"o": b"1"}
        entries = await client.xrange(keys[1])
        assert entries[0][0] == b"1-1"
        # The position is lost (evicted, or Redis restarted empty): a new epoch, and
        # what was left of the stream and the ids is dropped, never reused.
        await client.delete(keys[0])
        again = await backend.append(request("t", b"1", pid="p", epoch="bbbb"))
        assert (again.offset, again.epoch, again.duplicate) == (1, "bbbb", False)
        assert len(await client.xrange(keys[1])) == 1
        # Keys expire: a room nobody publishes to leaves nothing behind.
        await backend.append(request("short", b"1", ttl=0.2))
        short_keys = backend.history_keys("short")
        assert any([await client.exists(key) for key in short_keys])  # something to expire

        async def none_left() -> bool:
            return not any([await client.exists(key) for key in short_keys])

        await wait_until(none_left, 5, "the short room's keys expired")
    finally:
        await client.aclose()
        await backend.close()


@pytest.mark.redis
async def test_redis_keeps_a_bounded_window_of_publish_ids(
    shared_redis_url: str, prefix: str
) -> None:
    require(have_redis_server(), "redis-server on PATH")
    backend = RedisBackend(shared_redis_url, prefix=prefix)
    await backend.connect()
    client = aioredis.Redis.from_url(shared_redis_url)
    try:
        for i in range(200):
            await backend.append(request("ids", b"1", pid=f"p{i}", size=10))
        held = await client.hlen(backend.history_keys("ids")[2])
        print("publish ids held after 200 appends with history_size 10:", held)
        assert held <= 2 * 10 + 16 + 1
        assert (await backend.append(request("ids", b"1", pid="p199", size=10))).duplicate
    finally:
        await client.aclose()
        await backend.close()


async def test_a_burst_of_appends_and_reads_is_served_in_full(backend: Backend) -> None:
    """500 appends and 300 reads at once (a reconnect storm's joins): none refused.

    The Redis backend sends the appends of one loop turn in one pipeline and waits
    for a pooled connection rather than failing past the pool's size.
    """
    appends = await asyncio.gather(
        *(backend.append(request(f"b{i % 5}", b"%d" % i, pid=f"p{i}")) for i in range(500))
    )
    reads = await asyncio.gather(
        *(backend.read(f"b{i % 5}", 0, 200, "cccc", 60) for i in range(300))
    )
    offsets = {
        room: sorted(a.offset for i, a in enumerate(appends) if i % 5 == int(room[1]))
        for room in ("b0", "b1", "b2", "b3", "b4")
    }
    print("appends", len(appends), "reads", len(reads), "tops", sorted({r.top for r in reads}))
    assert all(offsets[room] == list(range(1, 101)) for room in offsets)
    assert all(not a.duplicate for a in appends)
    assert {r.top for r in reads} == {100}
    assert all([e.offset for e in r.entries] == list(range(1, 101)) for r in reads)


class _LoadAfterFirst:
    """A pipeline during which another client loads the script after its first command.

    That is a Redis restarted under load: this node's pipeline of appends meets a
    server without the script, and another node's single append (EVALSHA, then
    SCRIPT LOAD) loads it while the pipeline is being run.
    """

    def __init__(self, pipe: Any, script: str) -> None:
        self._pipe, self._script, self._sent = pipe, script, 0

    def evalsha(self, *args: Any) -> None:
        self._pipe.evalsha(*args)
        self._sent += 1
        if self._sent == 1:
            self._pipe.script_load(self._script)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        results = await self._pipe.execute(raise_on_error=raise_on_error)
        return [results[0], *results[2:]]  # without the other client's SCRIPT LOAD


@pytest.mark.redis
async def test_a_pipeline_partly_run_before_the_script_was_loaded_appends_each_once(
    shared_redis_url: str, prefix: str
) -> None:
    from lucent_ws.broker.redis import APPEND_SCRIPT

    require(have_redis_server(), "redis-server on PATH")
    backend = RedisBackend(shared_redis_url, prefix=prefix)
    await backend.connect()
    client = aioredis.Redis.from_url(shared_redis_url)
    try:
        await backend.append(request("ns", b"0"))
        await client.script_flush()
        redis_client = backend.client
        pipeline = redis_client.pipeline
        redis_client.pipeline = (  # type: ignore[method-assign]
            lambda transaction=False: _LoadAfterFirst(
                pipeline(transaction=transaction), APPEND_SCRIPT
            )
        )
        answers = await asyncio.gather(
            *(backend.append(request("ns", b"%d" % i)) for i in (1, 2, 3))
        )
        redis_client.pipeline = pipeline  # type: ignore[method-assign]
        read = await backend.read("ns", 0, 100, "cccc", 60)
        print("answers", [a.offset for a in answers], "stream", [e.offset for e in read.entries])
        assert read.top == 4  # each of the three appended once
        # The one that met no script runs after the others: never twice.
        assert sorted(a.offset for a in answers) == [2, 3, 4]
        assert sorted(e.payload for e in read.entries) == [b"0", b"1", b"2", b"3"]
    finally:
        await client.aclose()
        await backend.close()
