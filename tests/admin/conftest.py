"""Fixtures for the admin tests: a hub with its admin app, standalone or under a prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits
from tests.conftest import Peer, open_peer

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Hub:
    """A running hub: the test client, where the hub is mounted, and its manager."""

    client: TestClient[web.Request, web.Application]
    base: str  # "/" standalone, "/realtime/" when mounted as a sub-app
    manager: WebSocketManager

    @property
    def admin(self) -> str:
        return f"{self.base}admin/"

    async def peer(self, *rooms: str) -> Peer:
        peer = await open_peer(self.client, f"{self.base}ws")
        for room in rooms:
            await peer.join(room)
        return peer

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("headers", AUTH)
        async with self.client.request(method, self.admin + path, **kwargs) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


HubStarter = Callable[..., Awaitable[Hub]]


@pytest.fixture(params=["standalone", "prefixed"])
def start_hub(
    request: pytest.FixtureRequest, aiohttp_client: Any, manager: WebSocketManager
) -> HubStarter:
    """Start the hub with its admin app at ``/admin/`` or at ``/realtime/admin/``."""

    async def start(**kwargs: Any) -> Hub:
        kwargs.setdefault("manager", manager)
        kwargs.setdefault("heartbeat", False)
        kwargs.setdefault("limits", Limits(rate_limit=0))
        kwargs.setdefault("admin_token", TOKEN)
        hub_app = create_app(**kwargs)
        if request.param == "standalone":
            return Hub(await aiohttp_client(hub_app), "/", manager)
        outer = web.Application()
        outer.add_subapp("/realtime/", hub_app)
        return Hub(await aiohttp_client(outer), "/realtime/", manager)

    return start


@pytest.fixture
async def hub(start_hub: HubStarter) -> Hub:
    return await start_hub()
