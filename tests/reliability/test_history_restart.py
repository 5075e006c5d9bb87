"""A real hub process restarted: a new epoch, and recovery answers ``epoch_changed``."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.hubprocess import free_port

HUB = Path(__file__).with_name("history_hub.py")
ROOT = HUB.parents[2]


class Hub:
    def __init__(self, tmp_path: Path, port: int) -> None:
        self.port = port
        self.log = (tmp_path / f"hub-{port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HUB), str(port)], cwd=ROOT, stdout=self.log, stderr=self.log
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?v=2"

    async def ready(self) -> None:
        for _ in range(300):
            assert self.proc.poll() is None, "the hub exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise AssertionError("the hub never listened")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[list[Hub]]:
    started: list[Hub] = []
    yield started
    for hub in started:
        hub.kill()


async def request(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return reply


async def test_a_restart_changes_the_epoch_and_never_replays_stale_offsets(
    tmp_path: Path, hubs: list[Hub]
) -> None:
    port = free_port()
    hubs.append(first := Hub(tmp_path, port))
    await first.ready()
    async with websockets.connect(first.url) as ws:
        await ws.recv()  # connected
        joined = await request(ws, {"type": "join", "room": "h:1"})
        old_epoch = joined["epoch"]
        for n in range(5):
            ack = await request(
                ws, {"type": "broadcast", "room": "h:1", "payload": n, "id": f"p{n}", "ref": n}
            )
            assert (ack["offset"], ack["epoch"]) == (n + 1, old_epoch), ack
        first.kill()
    hubs.append(second := Hub(tmp_path, port))  # the same address, a new process
    await second.ready()
    async with websockets.connect(second.url) as ws:
        await ws.recv()
        since = {"offset": 5, "epoch": old_epoch}
        joined = await request(ws, {"type": "join", "room": "h:1", "since": since})
        assert joined["recovered"] is False, joined
        assert joined["reason"] == "epoch_changed", joined
        assert joined["epoch"] != old_epoch, joined
        assert (joined["offset"], joined["missed"]) == (0, 0), joined
        # the same publish id after the restart is a new message of the new epoch
        ack = await request(
            ws, {"type": "broadcast", "room": "h:1", "payload": 0, "id": "p0", "ref": 1}
        )
        assert (ack["offset"], ack["epoch"]) == (1, joined["epoch"]), ack
        assert "duplicate" not in ack
    print(f"epoch {old_epoch} -> {joined['epoch']}: recovered false, epoch_changed, offset 0")
