"""The README's Python consumer runs as printed against a hub on the printed address's shape."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from lucent_ws import WebSocketManager

from ..waiting import wait_until
from .support import local_hub

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def consumer() -> str:
    section = README.read_text(encoding="utf-8").split("## Official clients", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no Python block under 'Official clients'"
    return match.group(1)


async def test_readme_python_consumer_works_as_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = consumer()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 10
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    started: list[Any] = []
    monkeypatch.setattr(asyncio, "run", started.append)  # run it on this test's loop instead
    async with local_hub(manager) as url:
        exec(compile(code.replace("ws://127.0.0.1:8080/ws", url), str(README), "exec"), {})
        task = asyncio.ensure_future(started[0])
        try:
            await wait_until(lambda: manager.get_room_members("posts"), 10, "joined posts")
            manager.broadcast_to_room("posts", {"type": "post:created"})
            await wait_until(lambda: "post:created" in capsys.readouterr().out or task.done())
            assert not task.done()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
