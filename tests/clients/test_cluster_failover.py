"""A cluster node killed under the official clients: they move to the other node and recover.

Two ``run.py`` processes share a real redis-server (``--redis-url``) and a history room
``h:*``. The client under test (Python, or ``lucent-ws.js`` in Chromium) is given both
nodes' URLs and joins on node A; a publisher on A sends the first messages, node A is
killed with SIGKILL, and a publisher on node B sends the rest while the client moves
over. Every message must arrive once, in order, and the re-join must say ``recovered``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lucent_ws.client import Backoff, Client, ClientEvent, Disconnected, Room

from ..cluster import conftest as cluster_conftest
from ..cluster.conftest import RedisServer
from ..hubprocess import HubProcess, free_port, hub_process
from .test_js_client import browser_page

BEFORE = 20  # published on node A before it is killed
AFTER = 40  # published on node B while the client moves over
ROOM = "h:orders"
CONFIG = '[[rooms]]\npattern = "h:*"\nhistory_size = 1000\nhistory_ttl = 600\n'


redis_server = cluster_conftest.redis_server  # the fixture, a private redis-server


@contextlib.asynccontextmanager
async def two_nodes(
    tmp_path: Path, redis: RedisServer, *extra: str
) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    config = tmp_path / "hub.toml"
    config.write_text(CONFIG)
    flags = ("--no-heartbeat", "--redis-url", redis.url, "--config", str(config), *extra)
    async with (
        hub_process(*flags, tmp_path=tmp_path, port=free_port()) as a,
        hub_process(*flags, tmp_path=tmp_path, port=free_port()) as b,
    ):
        yield a, b


async def publish(url: str, payloads: range) -> None:
    """One publisher client on one node, acked message by message."""
    async with Client(url) as publisher:
        room = await publisher.join(ROOM)
        for n in payloads:
            await room.publish(n, timeout=5)


async def drain_room(room: Room, count: int, timeout: float = 15.0) -> list[Any]:
    """What arrives until ``count`` messages came, nothing came for ``timeout`` s, or
    (after ``count``) nothing more within 0.5 s: a double would show."""
    got: list[Any] = []
    with contextlib.suppress(TimeoutError):
        while True:
            wait = timeout if len(got) < count else 0.5
            got.append((await asyncio.wait_for(room.__anext__(), wait)).payload)
    return got


async def test_python_client_moves_to_the_other_node_and_recovers_every_message(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    events: list[ClientEvent] = []
    async with two_nodes(tmp_path, redis_server) as (a, b):
        client = Client([a.url, b.url], backoff=Backoff(base=0.05, cap=0.5), on_event=events.append)
        async with client:
            room = await client.join(ROOM)
            assert client.url is not None
            assert client.url.startswith(a.url)
            await publish(a.url, range(BEFORE))
            # Node A hangs, requests are sent, then A is killed: they fail at once.
            a.proc.send_signal(signal.SIGSTOP)
            pending = [
                asyncio.create_task(room.publish({"never": n}, timeout=30)) for n in range(3)
            ]
            await asyncio.sleep(0.2)
            dropped_at = time.perf_counter()
            a.proc.send_signal(signal.SIGKILL)
            results = await asyncio.gather(*pending, return_exceptions=True)
            failed_after = time.perf_counter() - dropped_at
            await publish(b.url, range(BEFORE, BEFORE + AFTER))
            got = await drain_room(room, BEFORE + AFTER)
            assert client.url is not None
            on_b = client.url.startswith(b.url)
    recoveries = [(e.recovered, e.missed, e.reason) for e in events if e.kind == "recovered"]
    print(
        f"received {len(got)} of {BEFORE + AFTER}, in order: {got == list(range(BEFORE + AFTER))}; "
        f"recoveries {recoveries}; pending requests failed {failed_after * 1000:.1f} ms after "
        f"the kill: {[type(r).__name__ for r in results]}"
    )
    assert all(isinstance(r, Disconnected) for r in results), results
    assert failed_after < 0.1
    assert on_b
    assert got == list(range(BEFORE + AFTER))
    assert recoveries
    assert recoveries[-1][0] is True, recoveries


PAGE_CLIENT = """async ([urls, room]) => {
  const { Client } = await import("/ws/client.js");
  window.events = [];
  window.messages = [];
  const client = new Client(urls, {
    backoff: { base: 50, cap: 500 },
    onEvent: (e) => {
      window.events.push(e);
      if (e.kind === "recovered") document.title = e.recovered ? "recovered" : "lost";
    },
  });
  window.client = client;
  const joined = await client.join(room);
  (async () => { for await (const m of joined) window.messages.push(m.payload); })();
  return client.url;
}"""


async def test_chromium_page_moves_to_the_other_node_and_shows_recovered(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    port_a, port_b = free_port(), free_port()
    origins = ("--allowed-origin", f"http://127.0.0.1:{port_a}")
    origins += ("--allowed-origin", f"http://127.0.0.1:{port_b}")
    config = tmp_path / "hub.toml"
    config.write_text(CONFIG)
    flags = ("--no-heartbeat", "--redis-url", redis_server.url, "--config", str(config), *origins)
    async with (
        browser_page() as page,
        hub_process(*flags, tmp_path=tmp_path, port=port_a) as a,
        hub_process(*flags, tmp_path=tmp_path, port=port_b) as b,
    ):
        await page.goto(f"http://127.0.0.1:{port_b}/ws/client.js")
        first = await page.evaluate(PAGE_CLIENT, [[a.url, b.url], ROOM])
        assert first.startswith(a.url)
        await publish(a.url, range(BEFORE))
        await page.wait_for_function(f"window.messages.length === {BEFORE}", timeout=10000)
        a.proc.send_signal(signal.SIGKILL)
        await publish(b.url, range(BEFORE, BEFORE + AFTER))
        total = BEFORE + AFTER
        with contextlib.suppress(Exception):  # the assertions below tell what is missing
            await page.wait_for_function(f"window.messages.length >= {total}", timeout=15000)
        await asyncio.sleep(0.5)  # time for a double to show
        messages = await page.evaluate("window.messages")
        title = await page.title()
        url = await page.evaluate("window.client.url")
        events = await page.evaluate(
            "window.events.filter((e) => e.kind !== 'connecting')"
            ".map((e) => [e.kind, e.code ?? e.recovered ?? null, e.reason ?? null])"
        )
    print(f"page received {len(messages)} of {total}; title {title!r}; events {events}")
    assert url.startswith(b.url)
    assert messages == list(range(total))
    assert title == "recovered"
