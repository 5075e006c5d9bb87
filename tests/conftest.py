"""Shared fixtures: fresh managers, in-process hub servers and WebSocket helpers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
UPGRADE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
"""A WebSocket upgrade request's headers, for requests that expect a refusal."""
CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium, which the browser tests drive through Playwright."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
"""Chromium's flags on this network-less machine (no background traffic, no sandbox as root)."""


def require(condition: object, what: str) -> None:
    """Skip when something the test needs is missing; in CI, fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI lacks what this test needs: {what}")
    pytest.skip(f"missing: {what}")


@pytest.fixture
def manager() -> WebSocketManager:
    """A fresh manager with the heartbeat off (tests turn it on when they need it)."""
    return WebSocketManager(heartbeat=None, close_timeout=1.0)


HubFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_hub(aiohttp_client: Any, manager: WebSocketManager) -> HubFactory:
    """Start ``create_app(manager=manager, **kwargs)`` on a test server.

    A ``heartbeat`` keyword configures the fixture's manager (heartbeat off by default).
    """

    async def start(**kwargs: Any) -> TestClient[web.Request, web.Application]:
        if "heartbeat" in kwargs:
            manager.configure_heartbeat(kwargs.pop("heartbeat") or None)
        kwargs.setdefault("manager", manager)
        kwargs.setdefault("limits", Limits(rate_limit=0))
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(**kwargs)
        )
        return client

    return start


class Peer:
    """A test WebSocket client that reads JSON and skips heartbeat pings on request."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, conn_id: str) -> None:
        self.ws = ws
        self.id = conn_id

    async def send(self, message: Any) -> None:
        await self.ws.send_json(message)

    async def recv(self, timeout: float = 5.0, *, skip_pings: bool = True) -> Any:
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"expected a text frame, got {msg.type} {msg.data!r}")
            data = msg.json()
            if skip_pings and data == {"type": "ping"}:
                continue
            return data

    async def request(self, message: Any, timeout: float = 5.0) -> Any:
        await self.send(message)
        return await self.recv(timeout)

    async def join(self, room: str) -> None:
        reply = await self.request({"type": "join", "room": room})
        assert reply == {"type": "joined", "room": room}, reply

    async def expect_close(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; return the close code."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                return self.ws.close_code
            if msg.type is aiohttp.WSMsgType.ERROR:
                return self.ws.close_code


async def open_peer(
    client: TestClient[web.Request, web.Application], path: str = "/ws", **kwargs: Any
) -> Peer:
    """Connect, read the ``connected`` message, return the peer."""
    ws = await client.ws_connect(path, **kwargs)
    hello = (await ws.receive(timeout=5)).json()
    assert hello["type"] == "connected", hello
    return Peer(ws, hello["id"])


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    """A list the test appends peers to; they are closed at teardown."""
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        await peer.ws.close()
