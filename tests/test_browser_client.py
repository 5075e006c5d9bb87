"""The original document's browser client code works unchanged against the hub.

``tests/js/document_client.js`` holds the document's "Client-Side Usage" and
"Client-side pong handler" examples verbatim; Node's built-in WebSocket (a real,
non-Python client, the same WHATWG API as a browser) runs them against an
in-process hub with a short heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lucent_ws import HeartbeatConfig, WebSocketManager
from lucent_ws.session import Session

from .conftest import HubFactory, require
from .waiting import wait_until

CLIENT_JS = Path(__file__).parent / "js" / "document_client.js"
HEARTBEAT = HeartbeatConfig(interval=0.5, timeout=0.25)
PINGS = 4  # heartbeat rounds each client must survive

Record = dict[str, Any]


def node_command() -> list[str]:
    node = shutil.which("node")
    require(node, "node")
    assert node is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"v(\d+)\.", version.stdout)
    major = int(match.group(1)) if match else 0
    require(major >= 20, f"Node >= 20 with a built-in WebSocket (found {version.stdout})")
    # Node 20 and 21 ship WebSocket behind a flag; 22+ have it on by default.
    return [node, "--experimental-websocket"] if major < 22 else [node]


class NodeClient:
    """The Node process running the document's code; its JSON-lines output as records."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.records: list[Record] = []

    async def wait_for(
        self, predicate: Callable[[list[Record]], bool], timeout: float = 10.0
    ) -> None:
        """Read output until ``predicate(records)`` holds."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while not predicate(self.records):
                line = await self.proc.stdout.readline()
                assert line, f"node exited early: {self.records}"
                self.records.append(json.loads(line))

    def messages(self, client: int) -> list[Any]:
        return [
            r["data"] for r in self.records if r.get("client") == client and r["event"] == "message"
        ]

    def events(self, event: str) -> list[Record]:
        return [r for r in self.records if r["event"] == event]


@pytest.fixture
async def node_client(make_hub: HubFactory) -> AsyncIterator[NodeClient]:
    command = node_command()
    client = await make_hub(heartbeat=HEARTBEAT)
    proc = await asyncio.create_subprocess_exec(
        *command,
        str(CLIENT_JS),
        env={"HUB_URL": f"ws://127.0.0.1:{client.port}/ws", "PATH": ""},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        assert proc.stdout is not None
        await proc.stdout.read()


@pytest.fixture
def texts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Every text frame the hub receives, by connection id (a spy on the session)."""
    received: dict[str, list[str]] = defaultdict(list)
    on_text = Session.on_text

    async def spy(self: Session, text: str) -> None:
        received[self.conn.id].append(text)
        await on_text(self, text)

    monkeypatch.setattr(Session, "on_text", spy)
    return received


async def test_document_client_code_works_unchanged(
    node_client: NodeClient, manager: WebSocketManager, texts: dict[str, list[str]]
) -> None:
    # Both examples connect; the first joins "posts" on open, as the document shows.
    await node_client.wait_for(
        lambda _: (
            {"type": "joined", "room": "posts"} in node_client.messages(0)
            and len(node_client.messages(1)) >= 1
        )
    )
    for client in (0, 1):
        hello = node_client.messages(client)[0]
        assert hello["type"] == "connected"
    assert len(manager) == 2
    assert manager.room_size("posts") == 1

    # Host code announces a new post, exactly as in the document.
    doc = {"id": 1, "title": "Hello", "tags": ["news"]}
    assert manager.broadcast_to_room("posts", {"type": "post:created", "doc": doc}) == 1
    await node_client.wait_for(lambda _: bool(node_client.events("log")))
    assert node_client.events("log") == [{"event": "log", "args": ["New post:", doc]}]
    updated = {**doc, "title": "Hello again"}
    assert manager.broadcast_to_room("posts", {"type": "post:updated", "doc": updated}) == 1
    await node_client.wait_for(lambda _: len(node_client.events("log")) == 2)
    assert node_client.events("log")[1]["args"] == ["Updated post:", updated]

    # Both stay connected across several heartbeats by answering the JSON pings.
    def pings(client: int) -> int:
        return node_client.messages(client).count({"type": "ping"})

    # (Node also answers the protocol PING frames natively, like a browser; the spy
    # shows the document's JSON pongs arrive too, and are accepted without error.)
    await node_client.wait_for(lambda _: pings(0) > PINGS and pings(1) > PINGS)

    def json_pongs(client: int) -> int:
        conn_id = node_client.messages(client)[0]["id"]
        return texts[conn_id].count('{"type":"pong"}')

    await wait_until(lambda: json_pongs(0) >= PINGS and json_pongs(1) >= PINGS)
    assert node_client.events("close") == []
    assert node_client.events("error") == []
    assert not any(m.get("type") == "error" for c in (0, 1) for m in node_client.messages(c))
    assert len(manager) == 2
    assert manager.counters.evictions.get("heartbeat", 0) == 0
