"""The getting-started page's "Embedding in ten lines" runs as printed.

The code block is read from docs/getting-started.md and executed with
``web.run_app`` captured, then served on a test server: a client in room
``posts`` receives what ``POST /posts`` publishes, exactly as sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import lucent_ws

from .waiting import wait_until

PAGE = Path(__file__).resolve().parent.parent / "docs" / "getting-started.md"


def _example() -> str:
    section = PAGE.read_text(encoding="utf-8").split("## Embedding in ten lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no Python block under 'Embedding in ten lines'"
    return match.group(1)


async def test_embedding_in_ten_lines_runs_as_printed(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _example()
    lines = [line for line in code.splitlines() if line.strip()]
    print(f"FIGURE example: {len(lines)} non-blank lines")
    assert len(lines) <= 12

    apps: list[web.Application] = []
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: apps.append(app))
    exec(compile(code, str(PAGE), "exec"), {"__name__": "docs_example"})
    assert len(apps) == 1

    client = await aiohttp_client(apps[0])
    ws = await client.ws_connect("/realtime/ws")
    try:
        connected = await ws.receive_json(timeout=5)
        assert connected["type"] == "connected"
        await ws.send_json({"type": "join", "room": "posts"})
        assert await ws.receive_json(timeout=5) == {"type": "joined", "room": "posts"}

        doc = {"id": 1, "title": "Hello"}
        resp = await client.post("/posts", json=doc)
        assert resp.status == 201
        assert await resp.json() == doc
        assert await ws.receive_json(timeout=5) == {"type": "post:created", "doc": doc}
    finally:
        await ws.close()
    # The example uses the module-level manager: leave it as empty as it was.
    await wait_until(lambda: len(lucent_ws.ws_manager) == 0)
