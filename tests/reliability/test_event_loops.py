"""``python -m lucent_ws`` serves the same protocol on each event loop it offers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import websockets

from .support import hub_process

TOKEN = "event-loops-admin-token"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_every_loop_serves_v1_v2_and_the_admin_api(tmp_path: Path, loop: str) -> None:
    async with hub_process(tmp_path, TOKEN, "--loop", loop) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url) as v1, websockets.connect(url + "?v=2") as v2:
            for ws in (v1, v2):
                assert json.loads(await ws.recv())["type"] == "connected"
                await ws.send(json.dumps({"type": "join", "room": "posts"}))
                assert json.loads(await ws.recv()) == {"type": "joined", "room": "posts"}
            async with aiohttp.ClientSession() as http:
                response = await http.post(
                    f"http://127.0.0.1:{server.port}/admin/broadcast",
                    json={"room": "posts", "payload": {"n": 1}},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert response.status == 200, await response.text()
            assert json.loads(await asyncio.wait_for(v1.recv(), 5)) == {"n": 1}
            assert json.loads(await asyncio.wait_for(v2.recv(), 5)) == {
                "type": "message",
                "room": "posts",
                "from": None,
                "payload": {"n": 1},
            }
        output = server.output()
        assert "Traceback" not in output, output
