"""Admin API and dashboard of history rooms: ``GET /rooms/{room}/history``, broadcast offsets."""

from __future__ import annotations

from typing import Any

import pytest

from lucent_ws import WebSocketManager
from lucent_ws.policy import RoomPolicy
from tests.conftest import Peer, open_peer

from .conftest import TOKEN, Hub
from .test_browser_dashboard import browser, start

__all__ = ["browser"]  # the fixture, used by the Chromium test below


@pytest.fixture
def manager() -> WebSocketManager:
    return WebSocketManager(heartbeat=None, policies=[RoomPolicy("news*", history_size=5)])


async def test_history_endpoint_and_broadcast_positions(hub: Hub) -> None:
    status, body = await hub.call("POST", "broadcast", json={"room": "news", "payload": {"n": 1}})
    assert status == 200
    assert body["delivered"] == 0
    assert body["offset"] == 1
    epoch = body["epoch"]
    for n in range(2, 9):
        await hub.call("POST", "broadcast", json={"room": "news", "payload": {"n": n}})
    status, page = await hub.call("GET", "rooms/news/history")
    assert status == 200
    assert (page["room"], page["epoch"], page["offset"]) == ("news", epoch, 8)
    assert [m["payload"]["n"] for m in page["messages"]] == [4, 5, 6, 7, 8]  # the ring keeps 5
    assert page["messages"][0] == {
        "type": "message",
        "room": "news",
        "from": None,
        "payload": {"n": 4},
        "offset": 4,
        "epoch": epoch,
    }
    _, newest = await hub.call("GET", "rooms/news/history?limit=2")
    assert [m["offset"] for m in newest["messages"]] == [7, 8]
    _, after = await hub.call("GET", f"rooms/news/history?since=6&epoch={epoch}")
    assert [m["offset"] for m in after["messages"]] == [7, 8]
    status, _ = await hub.call("GET", "rooms/news/history?limit=0")
    assert status == 422
    status, missing = await hub.call("GET", "rooms/plain/history")
    assert status == 404, missing
    status, plain = await hub.call("POST", "broadcast", json={"room": "plain", "payload": 1})
    assert plain == {"delivered": 0}


async def test_the_spec_declares_the_history_route(hub: Hub) -> None:
    _, spec = await hub.call("GET", "openapi.json")
    route = spec["paths"]["/rooms/{room}/history"]["get"]
    assert {p["name"] for p in route["parameters"]} >= {"room", "limit", "since", "epoch"}


@pytest.mark.browser
@pytest.mark.slow
async def test_the_dashboard_shows_a_rooms_recent_messages(
    aiohttp_client: Any, manager: WebSocketManager, browser: Any, peers: list[Peer]
) -> None:
    from playwright.async_api import expect

    client = await start(aiohttp_client, manager)
    peers.append(peer := await open_peer(client))
    await peer.join("news")
    for n in range(1, 4):
        manager.broadcast_to_room("news", {"headline": f"story {n}"})
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(str(client.make_url("/admin/")))
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.click('#rooms-table tr[data-room="news"]')
    rows = page.locator("#history-table tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("story 3")  # newest first
    await expect(page.locator("#history-position")).to_contain_text("offset 3")
