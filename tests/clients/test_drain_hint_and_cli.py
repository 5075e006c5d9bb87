"""The drain hint before a shutdown's 1001, and ``lucent-ws listen`` / ``publish``."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from lucent_ws import WebSocketManager, drain

from ..conftest import HubFactory, open_peer
from .support import local_hub


@pytest.mark.parametrize(("within", "expected"), [(None, 5.0), (2.5, 2.5), (0, None)])
async def test_v2_connections_get_the_drain_hint_before_1001(
    make_hub: HubFactory, within: float | None, expected: float | None
) -> None:
    client = await make_hub() if within is None else await make_hub(reconnect_within=within)
    v2 = await open_peer(client, "/ws?v=2")
    v1 = await open_peer(client)
    draining = asyncio.create_task(drain(client.server.app))  # returns once clients answer
    v2_frames = [await v2.recv()] if expected is not None else []
    assert await v2.expect_close() == 1001
    assert await v1.expect_close() == 1001  # v1 gets no hint: its protocol has none
    await draining
    print(f"reconnect_within={within}: v2 got {v2_frames} then 1001")
    if expected is None:
        assert v2_frames == []
    else:
        assert v2_frames == [{"type": "reconnect", "within": expected}]


async def test_listen_prints_messages_that_publish_sends() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    async with local_hub(manager) as url:
        listen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lucent_ws", "listen", url, "chat:1", "posts",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            for _ in range(500):
                if len(manager.get_room_members("posts")) == 1:
                    break
                await asyncio.sleep(0.02)
            publish = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "lucent_ws", "publish", url, "chat:1", '{"text": "hi"}',
                stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(publish.communicate(), 30)
            assert publish.returncode == 0
            assert json.loads(out)["delivered"] == 1
            manager.broadcast_to_room("posts", {"type": "post:created"})
            assert listen.stdout is not None
            lines = [json.loads(await asyncio.wait_for(listen.stdout.readline(), 10))]
            lines.append(json.loads(await asyncio.wait_for(listen.stdout.readline(), 10)))
            print("listen printed:", lines)
            assert lines[0]["room"] == "chat:1"
            assert lines[0]["payload"] == {"text": "hi"}
            assert lines[1] == {"room": "posts", "from": None, "payload": {"type": "post:created"}}
        finally:
            listen.kill()
            await listen.wait()


async def test_publish_to_a_hub_that_is_not_there_fails_cleanly() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lucent_ws", "publish", "--timeout", "0.5",
        "ws://127.0.0.1:9/ws", "chat:1", "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert b"not connected within 0.5 s" in err
