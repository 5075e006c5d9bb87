"""SIGKILL of a node with 200 members of a presence room, with real processes and Redis.

Two ``run.py`` nodes share a redis-server; the room ``stage`` has ``presence`` and
``join_leave`` from a ``--config`` file. 200 v2 clients join on node A, 20 on node
B; every client asks ``presence`` and applies the diffs strictly
(:class:`tests.presenceview.PresenceView`), stamping each with its arrival time.
Node A is killed with SIGKILL: within lease + 1 s every B client's view must be
exactly the B members, each A member's leave must have arrived once, and no B
member may ever have left anyone's view (no flap). A second run with a lease far
longer than the one the bound is computed from shows the bound can fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from ..hubprocess import HubProcess, hub_process
from ..presenceview import PresenceView
from ..waiting import wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOM = "stage"
ON_A = 200
ON_B = 20
TOKEN = "presence-kill-token"
CONFIG = f"""
[[rooms]]
pattern = "{ROOM}"
presence = true
join_leave = true
"""


@dataclass
class Member:
    """One real WebSocket client: its id, node, and its presence view as it arrives."""

    ws: aiohttp.ClientWebSocketResponse
    id: str
    node: str
    view: PresenceView = field(default_factory=lambda: PresenceView(ROOM))
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.view.apply(msg.json(), loop.time())


@dataclass
class Figures:
    lease: float
    left: int = 0
    """A members whose leave reached every B client."""
    last_leave: float = 0.0
    """Seconds from the kill to the last of those leaves, across B clients."""
    flaps: int = 0
    leaves_not_once: int = 0
    errors: list[str] = field(default_factory=list)
    node_b_count: int = -1
    """Node B's own presence count after the kill (admin API)."""


async def _open(session: aiohttp.ClientSession, hub: HubProcess, node: str) -> Member:
    ws = await session.ws_connect(f"{hub.url}?v=2")
    hello = (await ws.receive(timeout=10)).json()
    assert hello["type"] == "connected", hello
    assert hello["v"] == 2, hello
    await ws.send_json({"type": "join", "room": ROOM, "ref": 1})
    reply = (await ws.receive(timeout=10)).json()
    assert reply == {"type": "joined", "room": ROOM, "ref": 1}, reply
    member = Member(ws, hello["id"], node)
    member.reader = asyncio.get_running_loop().create_task(member.read())
    await ws.send_json({"type": "presence", "room": ROOM})
    return member


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


async def kill_scenario(
    lease: float, redis_url: str, prefix: str, tmp_path: Path, exits: AsyncExitStack
) -> Figures:
    """Run the scenario with nodes of this ``lease``; return what the B clients saw."""
    config = tmp_path / "rooms.toml"
    config.write_text(CONFIG)
    args = ["--config", str(config), "--redis-prefix", prefix, "--lease", str(lease),
            "--admin-token", TOKEN, "--no-heartbeat", "--rate-limit", "0"]  # fmt: skip
    env = {"LUCENT_WS_REDIS_URL": redis_url}
    a, b = await asyncio.gather(
        exits.enter_async_context(hub_process(*args, tmp_path=tmp_path, env=env)),
        exits.enter_async_context(hub_process(*args, tmp_path=tmp_path, env=env)),
    )
    session = await exits.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    )
    gate = asyncio.Semaphore(50)

    async def open_one(hub: HubProcess, node: str) -> Member:
        async with gate:
            return await _open(session, hub, node)

    members = await asyncio.gather(
        *(open_one(a, "A") for _ in range(ON_A)), *(open_one(b, "B") for _ in range(ON_B))
    )
    everyone = {m.id for m in members}
    on_a = {m.id for m in members if m.node == "A"}
    on_b = everyone - on_a
    watchers = [m for m in members if m.node == "B"]
    await wait_until(
        lambda: all(m.view.ids() == everyone for m in members), 30, "every view holds all 220"
    )
    loop = asyncio.get_running_loop()
    killed = loop.time()
    os.kill(a.proc.pid, signal.SIGKILL)
    await a.proc.wait()
    await wait_until(
        lambda: all(m.view.ids() == on_b for m in watchers),
        lease + 10,
        "every B view holds exactly the B members",
    )
    figures = Figures(lease)
    left_everywhere = set(on_a)
    for m in watchers:
        leaves = [(t, i) for t, kind, i in m.view.events if kind == "leave"]
        figures.flaps += sum(1 for _, i in leaves if i in on_b)
        figures.leaves_not_once += sum(1 for i in on_a if sum(1 for _, j in leaves if j == i) != 1)
        arrivals = [t - killed for t, i in leaves if i in on_a]
        figures.last_leave = max([figures.last_leave, *arrivals])
        left_everywhere &= {i for _, i in leaves}
        figures.errors.extend(m.view.errors)
    for m in members:  # before the kill nobody left anyone's view either
        figures.flaps += sum(1 for t, kind, _ in m.view.events if kind == "leave" and t < killed)
        if m.node == "A":
            figures.errors.extend(m.view.errors)
    figures.left = len(left_everywhere)
    url = f"http://127.0.0.1:{b.port}/admin/rooms/{ROOM}/presence"
    async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 200
        figures.node_b_count = (await resp.json())["count"]
    for m in watchers:
        await m.ws.close()
    return figures


def within_bound(figures: Figures, claimed_lease: float) -> bool:
    """The guarantee: every A member left every B view within the lease plus 1 s."""
    return figures.last_leave <= claimed_lease + 1.0


async def test_sigkill_of_a_node_with_200_members_leaves_within_the_lease(
    shared_redis_url: str, prefix: str, tmp_path: Path, stack: AsyncExitStack
) -> None:
    figures = await kill_scenario(2.0, shared_redis_url, prefix, tmp_path, stack)
    print(
        f"\nSIGKILL of node A (lease {figures.lease} s): {figures.left}/{ON_A} members left "
        f"every one of {ON_B} B views; last leave {figures.last_leave:.2f} s after the kill; "
        f"flaps {figures.flaps}; leaves not exactly once {figures.leaves_not_once}; "
        f"protocol errors {len(figures.errors)}"
    )
    assert figures.errors == []
    assert figures.node_b_count == ON_B
    assert figures.left == ON_A
    assert figures.leaves_not_once == 0
    assert figures.flaps == 0
    assert within_bound(figures, figures.lease)


async def test_the_bound_fails_for_a_node_whose_lease_is_longer_than_claimed(
    shared_redis_url: str, prefix: str, tmp_path: Path, stack: AsyncExitStack
) -> None:
    """The same measurement, with nodes on a 6 s lease judged against a 1.5 s one: a dead
    node's members then leave at least 4 s after the kill (two thirds of the lease at
    least remain), past 1.5 + 1 s, so the bound must fail."""
    figures = await kill_scenario(6.0, shared_redis_url, prefix, tmp_path, stack)
    print(f"\nlease 6 s judged as 1.5 s: last leave {figures.last_leave:.2f} s after the kill")
    assert figures.left == ON_A
    assert figures.flaps == 0
    assert not within_bound(figures, 1.5)
