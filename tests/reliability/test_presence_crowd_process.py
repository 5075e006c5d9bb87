"""1,000 real WebSocket clients join one presence room of a real server within a second.

The server is ``run.py`` with the room's policy from a ``--config`` file. The
clients (aiohttp, one process) connect first; then, in 40 bursts over 0.8 s, each
sends ``join`` and ``presence``. Every client applies what it receives strictly
(:class:`tests.presenceview.PresenceView`). Each must end with the full list of
1,000 members, without a protocol error, after at most 20 presence frames
(the reply plus the batched diffs: a diff per join would be 1,000).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from ..hubprocess import hub_process
from ..presenceview import PresenceView
from ..waiting import wait_until

pytestmark = pytest.mark.slow

ROOM = "crowd"
MEMBERS = 1000
BURSTS = 40
SPREAD = 0.8
CONFIG = f"""
[[rooms]]
pattern = "{ROOM}"
presence = true
join_leave = true
"""


async def test_a_thousand_real_clients_join_within_a_second(tmp_path: Path) -> None:
    config = tmp_path / "rooms.toml"
    config.write_text(CONFIG)
    args = ("--config", str(config), "--no-heartbeat", "--rate-limit", "0")
    async with (
        hub_process(*args, tmp_path=tmp_path) as hub,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        gate = asyncio.Semaphore(100)

        async def open_one() -> tuple[aiohttp.ClientWebSocketResponse, str]:
            async with gate:
                ws = await session.ws_connect(f"{hub.url}?v=2", max_msg_size=0)
                hello = (await ws.receive(timeout=30)).json()
                assert hello["type"] == "connected", hello
                return ws, str(hello["id"])

        clients = await asyncio.gather(*(open_one() for _ in range(MEMBERS)))
        ids = {conn_id for _, conn_id in clients}
        views = [PresenceView(ROOM) for _ in clients]
        received: list[list[str]] = [[] for _ in clients]

        async def read(ws: aiohttp.ClientWebSocketResponse, texts: list[str]) -> None:
            # Kept as text and decoded later: decoding 1,000 presence replies while the
            # joins go out would slow the sending past the second the test is about.
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    texts.append(msg.data)

        def apply_received() -> None:
            for view, texts in zip(views, received, strict=True):
                for text in texts:
                    view.apply(json.loads(text))
                texts.clear()

        pairs = zip(clients, received, strict=True)
        readers = [asyncio.create_task(read(ws, texts)) for (ws, _), texts in pairs]
        loop = asyncio.get_running_loop()
        started = loop.time()
        for burst in range(BURSTS):
            for ws, _ in clients[burst::BURSTS]:
                await ws.send_str(f'{{"type":"join","room":"{ROOM}"}}')
                await ws.send_str(f'{{"type":"presence","room":"{ROOM}"}}')
            await asyncio.sleep(started + SPREAD * (burst + 1) / BURSTS - loop.time())
        took = loop.time() - started

        def all_right() -> bool:
            apply_received()
            return all(view.ids() == ids for view in views)

        await wait_until(all_right, 30, "every view holds all 1,000")
        settled = loop.time() - started
        frames = [view.frames for view in views]
        errors = [error for view in views for error in view.errors]
        print(
            f"\n{MEMBERS} real clients joined in {took:.2f} s; every view right "
            f"{settled:.2f} s after the first join; presence frames per member "
            f"max {max(frames)}, mean {sum(frames) / len(frames):.1f}; protocol errors "
            f"{len(errors)}"
        )
        assert errors == []
        assert max(frames) <= 20, f"the joins took {took:.2f} s (meant: within 1 s)"
        for ws, _ in clients:
            await ws.close()
        await asyncio.gather(*readers)
