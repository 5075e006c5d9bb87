"""The dashboard shows a presence room's members grouped by user, and only what they may see."""

from __future__ import annotations

from typing import Any

import pytest

from lucent_ws import WebSocketManager
from lucent_ws.policy import RoomPolicy
from tests.conftest import Peer, open_peer

from .conftest import TOKEN
from .test_browser_dashboard import browser, start

__all__ = ["browser"]


@pytest.fixture
def manager() -> WebSocketManager:
    policy = RoomPolicy("team", presence=True, join_leave=True, presence_info=("name",))
    return WebSocketManager(heartbeat=None, policies=[policy])


@pytest.mark.browser
@pytest.mark.slow
async def test_the_dashboard_shows_presence_by_user(
    aiohttp_client: Any, manager: WebSocketManager, browser: Any, peers: list[Peer]
) -> None:
    from playwright.async_api import expect

    client = await start(aiohttp_client, manager)
    for user, name in (("7", "Ann"), ("7", "Ann"), ("9", "Bob")):
        peer = await open_peer(client, "/ws?v=2")
        manager.set_meta(peer.id, "userId", user)
        manager.set_meta(peer.id, "name", name)
        manager.set_meta(peer.id, "token", "secret-claims")
        await peer.join("team")
        peers.append(peer)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(str(client.make_url("/admin/")))
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.click('#rooms-table tr[data-room="team"]')
    rows = page.locator("#presence-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Ann")
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text("2")  # two tabs, one user
    await expect(rows.nth(1)).to_contain_text("Bob")
    await expect(page.locator("#presence-count")).to_contain_text("2 users, 3 connections")
    assert "secret-claims" not in await page.locator("#room-presence").inner_text()
