"""A node killed under load: its clients recover on the other node with nothing lost.

Two real ``run.py`` nodes over a real redis-server, 1,000 v2 clients (500 per node) in
10 history rooms, a publisher at 200 messages/s with ids and retries through either
node. At t = 10 s node A gets SIGKILL; its clients reconnect to node B and re-join
with ``since`` = their last position. Every client's (room, offset) sequence from its
first join on must be exactly the room's Redis Stream from that join's top on.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from ..waiting import wait_until
from .conftest import RedisServer
from .history_check import Tally, check_streams, check_subscribers, read_stream
from .history_clients import Publisher, Subscriber, publish_at_rate
from .history_nodes import Clock, bounded, connections_on, start_nodes, ws_url

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CLIENTS = 1000
ROOMS = [f"h:{i}" for i in range(10)]
RATE = 200.0
KILL_AT = 10.0
RUN_AFTER_KILL = 5.0
RECOVER_MAX = 3000
"""Above the default 300: at 20 messages/s per room, 300 is 15 s, and on this 2-vCPU
machine loaded by other suites 500 reconnections took up to 14 s (``too_many`` then)."""


def rooms_of(n: int) -> list[str]:
    """Client ``n``'s rooms: one, and a second one for every fifth client."""
    rooms = [ROOMS[n % len(ROOMS)]]
    if n % 5 == 0:
        rooms.append(ROOMS[(n // 5 + 3) % len(ROOMS)])
    return rooms


async def connect_and_join(sub: Subscriber, session: aiohttp.ClientSession, url: str) -> None:
    await sub.connect(session, url)
    for answer in await sub.join_all():
        assert answer["type"] == "joined", answer
        assert "epoch" in answer, answer


async def reconnect(
    sub: Subscriber, session: aiohttp.ClientSession, url: str
) -> list[dict[str, Any]]:
    await sub.connect(session, url)
    return await sub.join_all(since=True, timeout=20.0)


async def test_a_killed_node_s_clients_recover_on_the_other_node_exactly(
    redis_server: RedisServer, tmp_path: Path, prefix: str
) -> None:
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        redis = aioredis.Redis.from_url(redis_server.url)
        stack.push_async_callback(redis.aclose)
        a, b = await start_nodes(stack, 2, redis_server.url, prefix, tmp_path, RECOVER_MAX)
        subs = [Subscriber(f"c{n}", rooms_of(n)) for n in range(CLIENTS)]
        on_a, on_b = subs[0::2], subs[1::2]
        await bounded(
            [lambda s=s: connect_and_join(s, session, ws_url(a)) for s in on_a]
            + [lambda s=s: connect_and_join(s, session, ws_url(b)) for s in on_b]
        )
        publisher = Publisher(ROOMS)
        await publisher.connect(session, [ws_url(a), ws_url(b)])
        await wait_until(
            lambda: _counts_are(session, [a, b], CLIENTS + 2), timeout=20, what="membership"
        )

        clock, stop = Clock(), asyncio.Event()
        publishing = asyncio.create_task(publish_at_rate(publisher, RATE, stop))
        await asyncio.sleep(KILL_AT)  # the timeline of the scenario, not a wait for a condition
        os.kill(a.proc.pid, signal.SIGKILL)
        await a.proc.wait()
        killed_at = clock()
        await wait_until(
            lambda: all(s.closed.is_set() for s in on_a), timeout=10, what="A's clients closed"
        )
        answers = await bounded(
            [lambda s=s: reconnect(s, session, ws_url(b)) for s in on_a], parallel=100
        )
        recovered_at = clock()
        # live traffic after the recovery too, however long the machine made it take
        await asyncio.sleep(max(2.0, KILL_AT + RUN_AFTER_KILL - clock()))
        stop.set()
        published = await publishing
        stopped_at = clock()

        streams = {room: await read_stream(redis, prefix, room) for room in ROOMS}
        tops = {room: (s.offsets[-1] if s.offsets else 0, s.epoch) for room, s in streams.items()}
        try:
            await wait_until(
                lambda: all(s.last.get(r) == tops[r] for s in subs for r in s.rooms),
                timeout=30,
                what="every client has received up to its rooms' tops",
            )
        except AssertionError as exc:
            timed_out = str(exc)  # the counts below say what is missing
        else:
            timed_out = ""
        delivered_at = clock()

    tally = Tally()
    for joins in answers:
        for answer in joins:
            if answer.get("type") == "joined" and answer.get("recovered") is True:
                tally.recoveries += 1
            else:
                tally.not_recovered += 1
                if len(tally.notes) < 5:
                    tally.notes.append(f"reconnect answer: {answer}")
    check_streams(streams, published, publisher.acks, tally)
    check_subscribers(subs, streams, tally)
    print(
        f"\nkill test: {CLIENTS:,} clients ({len(on_a)} per node), {len(ROOMS)} rooms, "
        f"{RATE:.0f} publishes/s; node A killed at {killed_at:.1f} s, its clients recovered "
        f"by {recovered_at:.1f} s, publishing stopped at {stopped_at:.1f} s, everything "
        f"delivered by {delivered_at:.1f} s; publisher retries {publisher.retries:,}, "
        f"errors {publisher.errors}, duplicate acks {publisher.duplicates}"
    )
    print(f"kill test: {tally.line()}")
    if timed_out:
        print(f"kill test: {timed_out}")
    for note in tally.notes:
        print(f"kill test: {note}")
    errors = [e for s in subs for e in s.errors]
    assert not errors, errors[:5]
    assert tally.publishes > RATE * (KILL_AT + RUN_AFTER_KILL) * 0.5
    assert tally.recoveries == sum(len(s.rooms) for s in on_a)
    assert tally.stream_entries == tally.publishes
    assert tally.failures() == 0, tally.line()
    assert not timed_out, timed_out


async def _counts_are(session: aiohttp.ClientSession, hubs: list[Any], expected: int) -> bool:
    return await connections_on(session, hubs) == [expected] * len(hubs)
