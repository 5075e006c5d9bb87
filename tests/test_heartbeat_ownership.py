"""The manager owns its heartbeat: apps never override the timing it was built with."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import lucent_ws
from lucent_ws import ConfigurationError, HeartbeatConfig, WebSocketManager, create_app, setup


async def ping_gaps(client: TestClient[web.Request, web.Application], pings: int) -> list[float]:
    """Seconds between the first ``pings`` heartbeat pings a client receives."""
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    async with client.ws_connect("/ws", autoping=False) as ws:
        while len(seen) < pings:
            msg = await ws.receive(timeout=5)
            if msg.type is aiohttp.WSMsgType.TEXT and msg.json() == {"type": "ping"}:
                seen.append(loop.time())
                await ws.send_json({"type": "pong"})
    return [b - a for a, b in itertools.pairwise(seen)]


async def test_an_app_runs_the_heartbeat_its_manager_was_built_with() -> None:
    config = HeartbeatConfig(interval=0.4, timeout=0.2)
    manager = WebSocketManager(heartbeat=config)
    # Two apps sharing the manager, one started after the other: neither changes it.
    first, second = create_app(manager=manager), create_app(manager=manager)
    async with TestClient(TestServer(first)) as one, TestClient(TestServer(second)):
        assert manager.heartbeat_config == config
        gaps = await ping_gaps(one, 3)
        assert manager.heartbeat_config == config
    print(f"FIGURE ping gaps {[round(g, 2) for g in gaps]} s for a 0.4 s interval")
    assert all(0.2 <= gap <= 1.5 for gap in gaps), gaps  # 0.4 s, never the 30 s default


def test_an_app_option_that_contradicts_the_manager_is_refused() -> None:
    manager = WebSocketManager(heartbeat=HeartbeatConfig(5, 2))
    with pytest.raises(ConfigurationError, match="heartbeat"):
        create_app(manager=manager, heartbeat=HeartbeatConfig(30, 10))
    with pytest.raises(ConfigurationError, match="heartbeat"):
        setup(web.Application(), manager=manager, heartbeat=False)
    create_app(manager=manager, heartbeat=HeartbeatConfig(5, 2))  # agreeing is fine
    assert manager.heartbeat_config == HeartbeatConfig(5, 2)


@pytest.fixture
def default_manager_heartbeat() -> Iterator[None]:
    saved = lucent_ws.ws_manager.heartbeat_config
    yield
    lucent_ws.ws_manager.configure_heartbeat(saved)


@pytest.mark.usefixtures("default_manager_heartbeat")
def test_the_option_configures_the_default_manager_when_the_app_is_created() -> None:
    create_app(heartbeat=HeartbeatConfig(60, 15))
    assert lucent_ws.ws_manager.heartbeat_config == HeartbeatConfig(60, 15)
    create_app(heartbeat=False)
    assert lucent_ws.ws_manager.heartbeat_config is None
    create_app()  # no option: the manager keeps what it has
    assert lucent_ws.ws_manager.heartbeat_config is None
