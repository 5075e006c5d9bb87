"""History rooms over a Redis that pauses, and over a Redis restarted empty.

Two real ``run.py`` nodes, a real redis-server of the test's own, raw v2 clients.
``CLIENT PAUSE 3000`` under a publisher: connected clients lose nothing and get no
resync (the nodes fill any gap from the Stream). A restart with no data: every
connected client gets exactly one ``resync`` (``epoch_changed``) per history room,
then the new epoch's messages, and joins, plain broadcasts and the admin API work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from ..waiting import wait_until
from .conftest import RedisServer
from .history_check import RoomStream, Tally, check_streams, check_subscribers, read_stream
from .history_clients import Publisher, Subscriber, publish_at_rate
from .history_nodes import Clock, admin, bounded, connections_on, start_nodes, ws_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOMS = [f"h:{i}" for i in range(5)]
PLAIN = "plain"
CLIENTS = 100


def rooms_of(n: int) -> list[str]:
    """One history room, a second one for every third client."""
    rooms = [ROOMS[n % len(ROOMS)]]
    if n % 3 == 0:
        rooms.append(ROOMS[(n // 3 + 2) % len(ROOMS)])
    return rooms


async def _start(
    stack: AsyncExitStack, redis_server: RedisServer, tmp_path: Path, prefix: str
) -> tuple[aiohttp.ClientSession, Any, list[Any], list[Subscriber], Publisher]:
    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    )
    redis = aioredis.Redis.from_url(redis_server.url)
    stack.push_async_callback(redis.aclose)
    hubs = await start_nodes(stack, 2, redis_server.url, prefix, tmp_path)
    subs = [Subscriber(f"c{n}", rooms_of(n)) for n in range(CLIENTS)]

    async def connect(sub: Subscriber, url: str) -> None:
        await sub.connect(session, url)
        for answer in await sub.join_all():
            assert answer["type"] == "joined", answer
        assert (await sub.request({"type": "join", "room": PLAIN}))["type"] == "joined"

    await bounded([lambda n=n, s=s: connect(s, ws_url(hubs[n % 2])) for n, s in enumerate(subs)])
    publisher = Publisher(ROOMS)
    await publisher.connect(session, [ws_url(hub) for hub in hubs])
    await wait_until(lambda: _counts_are(session, hubs, CLIENTS + 2), timeout=20, what="membership")
    return session, redis, hubs, subs, publisher


async def _streams(redis: Any, prefix: str) -> dict[str, RoomStream]:
    return {room: await read_stream(redis, prefix, room) for room in ROOMS}


def _tops(streams: dict[str, RoomStream]) -> dict[str, tuple[int, str | None]]:
    return {room: (s.offsets[-1] if s.offsets else 0, s.epoch) for room, s in streams.items()}


async def _all_delivered(subs: Sequence[Subscriber], streams: dict[str, RoomStream]) -> None:
    tops = _tops(streams)
    await wait_until(
        lambda: all(s.last.get(r) == tops[r] for s in subs for r in s.rooms),
        timeout=30,
        what="every client has received up to its rooms' tops",
    )


async def test_client_pause_loses_nothing(
    redis_server: RedisServer, tmp_path: Path, prefix: str
) -> None:
    async with AsyncExitStack() as stack:
        _, redis, _, subs, publisher = await _start(stack, redis_server, tmp_path, prefix)
        clock, stop = Clock(), asyncio.Event()
        publishing = asyncio.create_task(publish_at_rate(publisher, 100.0, stop))
        await asyncio.sleep(2.0)  # the scenario's timeline
        await redis.execute_command("CLIENT", "PAUSE", 3000)
        paused_at = clock()
        await asyncio.sleep(3.0 + 3.0)  # the pause, then publishing goes on for 3 s
        stop.set()
        published = await publishing
        acked_at = clock()
        await publisher.close()
        streams = await _streams(redis, prefix)
        await _all_delivered(subs, streams)
        delivered_at = clock()

    tally = Tally()
    check_streams(streams, published, publisher.acks, tally)
    check_subscribers(subs, streams, tally)
    resyncs = sum(len(s.resyncs) for s in subs)
    print(
        f"\nCLIENT PAUSE 3000 at {paused_at:.1f} s, every publish acknowledged by "
        f"{acked_at:.1f} s, everything delivered by {delivered_at:.1f} s; "
        f"publisher retries {publisher.retries}, errors {publisher.errors}, duplicate acks "
        f"{publisher.duplicates}, connections closed {publisher.close_codes}, slowest publish "
        f"{publisher.slowest}; resyncs {resyncs}"
    )
    print(f"CLIENT PAUSE: {tally.line()}")
    assert resyncs == 0, [s.resyncs for s in subs if s.resyncs][:3]
    assert tally.stream_entries == tally.publishes > 500
    assert tally.failures() == 0, (tally.line(), tally.notes)


async def test_redis_restarted_empty_means_one_resync_per_room_then_the_new_epoch(
    redis_server: RedisServer, tmp_path: Path, prefix: str
) -> None:
    async with AsyncExitStack() as stack:
        session, redis, hubs, subs, publisher = await _start(stack, redis_server, tmp_path, prefix)
        before_ids = [f"a{n}" for n in range(50)]
        await asyncio.gather(
            *(publisher.publish(i, ROOMS[n % len(ROOMS)], n, n) for n, i in enumerate(before_ids))
        )
        old = await _streams(redis, prefix)
        await _all_delivered(subs, old)
        before = Tally()
        check_streams(old, before_ids, publisher.acks, before)
        check_subscribers(subs, old, before)
        assert before.failures() == 0, before.line()
        counts_before = {(s.name, room): s.count(room) for s in subs for room in s.rooms}

        redis_server.stop()
        redis_server.start()  # the same port, no data
        redis = aioredis.Redis.from_url(redis_server.url)  # not the old server's connections
        stack.push_async_callback(redis.aclose)
        await wait_until(
            lambda: all(room in s.resynced_at for s in subs for room in s.rooms),
            timeout=30,
            what="every client was told to resync every history room",
        )
        after_ids = [f"b{n}" for n in range(50)]
        await asyncio.gather(
            *(publisher.publish(i, ROOMS[n % len(ROOMS)], n, n) for n, i in enumerate(after_ids))
        )
        new = await _streams(redis, prefix)
        await _all_delivered(subs, new)

        # Nothing else broke: a new client joins on each node, a plain broadcast crosses
        # nodes, the admin API answers and publishes to a history room with a position.
        late = [Subscriber(f"late{n}", [ROOMS[0]]) for n in range(2)]
        for sub, hub in zip(late, hubs, strict=True):
            await sub.connect(session, ws_url(hub))
            (joined,) = await sub.join_all()
            assert joined["epoch"] == new[ROOMS[0]].epoch, joined
        ack = await subs[0].request({"type": "broadcast", "room": PLAIN, "payload": "still here"})
        assert ack["type"] == "ack", ack
        await wait_until(
            lambda: all(m.get("payload") == "still here" for s in subs[1:] for m in s.other[-1:]),
            what="a plain broadcast reached every other client on both nodes",
        )
        status, stats = await admin(session, hubs[1], "GET", "/stats")
        assert (status, stats["broker"]) == (200, "up"), stats
        status, body = await admin(
            session, hubs[1], "POST", "/broadcast", {"room": ROOMS[1], "payload": "admin"}
        )
        assert status == 200, body
        assert body["epoch"] == new[ROOMS[1]].epoch, body
        new = await _streams(redis, prefix)
        await _all_delivered(subs, new)
        for sub in late:
            await sub.close()

    after = Tally()
    check_streams(new, after_ids, publisher.acks, after)
    # From its resync on, each client's messages are exactly the new Stream's.
    views = [
        Subscriber(
            s.name,
            s.rooms,
            received={r: s.received.get(r, [])[s.resynced_at[r][0] :] for r in s.rooms},
            first={r: _resync_position(s, r) for r in s.rooms},
        )
        for s in subs
    ]
    check_subscribers(views, new, after)
    wrong = [
        r
        for s in subs
        for r in s.resyncs
        if (r.get("recovered"), r.get("reason"), r.get("epoch"))
        != (False, "epoch_changed", new[r["room"]].epoch)
    ]
    resync_counts = sorted({len(v) for s in subs for v in s.resynced_at.values()})
    early = sum(
        1 for s in subs for r in s.rooms if s.resynced_at[r][0] != counts_before[(s.name, r)]
    )
    print(
        f"\nRedis restarted empty: epochs {[old[r].epoch for r in ROOMS]} -> "
        f"{[new[r].epoch for r in ROOMS]}; resyncs per client and room {resync_counts}, "
        f"not epoch_changed {len(wrong)}, after a new-epoch message {early}; "
        f"publisher retries {publisher.retries}, errors {publisher.errors}"
    )
    print(f"before the restart: {before.line()}")
    print(f"after the restart: {after.line()}")
    assert resync_counts == [1], resync_counts
    assert not wrong, wrong[:3]
    assert early == 0
    assert all(old[r].epoch != new[r].epoch for r in ROOMS)
    assert after.stream_entries == after.publishes + 1  # the admin broadcast's entry
    assert after.failures() == 0, (after.line(), after.notes)


def _resync_position(sub: Subscriber, room: str) -> tuple[int, str]:
    resync = next(r for r in sub.resyncs if r["room"] == room)
    return int(resync["offset"]), str(resync["epoch"])


async def _counts_are(session: aiohttp.ClientSession, hubs: list[Any], expected: int) -> bool:
    return await connections_on(session, hubs) == [expected] * len(hubs)


async def test_a_client_retrying_through_an_outage_is_not_closed_for_it(
    redis_server: RedisServer, tmp_path: Path, prefix: str
) -> None:
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        (hub,) = await start_nodes(stack, 1, redis_server.url, prefix, tmp_path)
        sub = Subscriber("retrier", [ROOMS[0]])
        await sub.connect(session, ws_url(hub))
        await sub.join_all()
        redis_server.stop()

        async def broker_down() -> bool:
            status, stats = await admin(session, hub, "GET", "/stats")
            return status == 200 and stats["broker"] == "down"

        await wait_until(broker_down, timeout=15, what="the node noticed the outage")
        answers: list[str] = []
        for n in range(150):  # one publish retried 150 times over about 8 s
            if sub.closed.is_set():
                break
            answer = await sub.request(
                {"type": "broadcast", "room": ROOMS[0], "payload": n, "id": "one"}
            )
            answers.append(str(answer.get("code", answer["type"])))
            await asyncio.sleep(0.05)
        closed_with = sub.ws.close_code if sub.ws is not None else None
        print(
            f"\nretrying through an outage: {len(answers)} answers "
            f"({sorted(set(answers))}), connection closed with {closed_with}"
        )
        assert not sub.closed.is_set(), f"closed with {closed_with} after {len(answers)} retries"
        assert answers == ["unavailable"] * 150
