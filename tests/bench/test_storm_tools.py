"""The storm and soak scenarios' tools count what they claim: offsets, buckets, cuts."""

from __future__ import annotations

import asyncio
import random

from bench.cutproxy import CutProxy
from bench.storm import StormClient, Tally, buckets, listen_overflows


def client() -> StormClient:
    c = StormClient("127.0.0.1", 9, "h:1", Tally(), random.Random(0))
    c._on({"type": "joined", "room": "h:1", "epoch": "e", "offset": 2})
    return c


def test_offsets_count_lost_duplicated_and_reordered() -> None:
    c = client()
    for offset in (3, 4, 6, 6, 5, 7):
        c._on({"type": "message", "room": "h:1", "epoch": "e", "offset": offset})
    assert (c.received, c.lost, c.duplicated, c.reordered) == (6, 1, 1, 1)
    assert c.offset == 7


def test_a_rejoin_records_the_outcome_and_keeps_or_takes_the_position() -> None:
    c = client()
    c._on({"type": "joined", "epoch": "e", "offset": 9, "recovered": True, "missed": 7})
    assert (c.epoch, c.offset) == ("e", 2)  # recovered: the replay continues from here
    c._on({"type": "joined", "epoch": "f", "offset": 4, "recovered": False, "reason": "gap"})
    assert (c.epoch, c.offset) == ("f", 4)
    assert dict(c.tally.outcomes) == {"recovered": 1, "gap": 1}
    assert c.tally.missed == 7


def test_the_drain_hint_is_kept_for_the_next_attempt() -> None:
    c = client()
    c._on({"type": "reconnect", "within": 5})
    assert c._hint == 5.0


def test_buckets() -> None:
    assert buckets([10.0, 10.1, 10.3, 10.9], 10.0, 0.25) == [2, 1, 0, 1]
    assert buckets([], 0.0, 0.25) == []


def test_listen_overflows_reads_the_kernel_counters() -> None:
    counters = listen_overflows()
    assert set(counters) == {"ListenOverflows", "ListenDrops"}
    assert all(value >= 0 for value in counters.values())


async def test_the_proxy_forwards_and_a_cut_resets_every_connection() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = CutProxy(server.sockets[0].getsockname()[1])
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
        proxy.cut()
        try:
            rest = await asyncio.wait_for(reader.read(100), 5)
        except ConnectionResetError:
            rest = b""
        assert rest == b""  # reset (or closed): the connection is gone
        writer.close()
        assert proxy.cuts == 1
    finally:
        await proxy.close()
        server.close()
        await server.wait_closed()
