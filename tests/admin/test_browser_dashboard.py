"""The dashboard in a real Chromium (Playwright): login, live totals, broadcast, kick.

Saves ``test-artifacts/dashboard.png`` (and a phone-width one) of a realistic state.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import lucent_ws
from lucent_ws import WebSocketManager
from lucent_ws.admin import create_admin_app
from lucent_ws.config import Limits
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, Peer, open_peer, require

from .conftest import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PEOPLE = [
    ("lobby", {"userId": 1, "name": "ada"}),
    ("lobby", {"userId": 2, "name": "grace"}),
    ("lobby", {"userId": 3, "name": "linus"}),
    ("posts", {"userId": 4, "name": "margaret"}),
    ("posts", {"userId": 1, "name": "ada"}),
    ("team/design", {"userId": 5, "name": "susan"}),
    ("support", {"userId": 6, "name": "ken", "plan": "pro"}),
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require(shutil.which("chromium") and os.path.exists(CHROMIUM), "chromium")  # noqa: ASYNC240
    require(importlib.util.find_spec("playwright"), "the playwright package")
    import playwright.async_api as playwright_api

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def start(aiohttp_client: Any, manager: WebSocketManager) -> TestClient[Any, Any]:
    app = web.Application()
    lucent_ws.setup(app, manager=manager, heartbeat=False, limits=Limits(rate_limit=0))
    # Fast sampling, so the chart has a few minutes' worth of shape in seconds.
    app.add_subapp("/admin/", create_admin_app(manager, token=TOKEN, history_interval=0.2))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def test_dashboard_in_chromium(
    aiohttp_client: Any, manager: WebSocketManager, browser: Any, peers: list[Peer]
) -> None:
    from playwright.async_api import expect

    client = await start(aiohttp_client, manager)
    base = str(client.make_url("/admin/"))
    for room, meta in PEOPLE[:3]:
        peer = await open_peer(client)
        await peer.join(room)
        for key, value in meta.items():
            manager.set_meta(peer.id, key, value)
        peers.append(peer)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # HTTP errors the test causes on purpose (401 login, 404 of a kicked id) are not bugs.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )

    # log in through the form
    await page.goto(base)
    await expect(page.locator("h1")).to_have_text("Admin dashboard")
    await page.fill("#token", "wrong")
    await page.click("button[type=submit]")
    await expect(page.locator(".alert-error")).to_contain_text("not valid")
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    connections = page.locator("#stat-connections")
    await expect(connections).to_have_text("3")

    # totals change live when clients come and go, without a reload
    for room, meta in PEOPLE[3:]:
        peer = await open_peer(client)
        await peer.join(room)
        for key, value in meta.items():
            manager.set_meta(peer.id, key, value)
        peers.append(peer)
    await expect(connections).to_have_text(str(len(PEOPLE)))
    await expect(page.locator("#stat-rooms")).to_have_text("4")
    await expect(page.locator("#rooms-table tbody tr")).to_have_count(4)

    # some traffic for the chart
    for _ in range(15):
        await peers[0].send({"type": "broadcast", "room": "lobby", "payload": {"n": 1}})
        await asyncio.sleep(0.05)
    for peer in peers[1:3]:
        while (await peer.recv()) != {
            "type": "message",
            "room": "lobby",
            "from": peers[0].id,
            "payload": {"n": 1},
        }:
            pass

    # a room's members and their metadata
    await page.click('#rooms-table tr[data-room="lobby"]')
    await expect(page.locator("#members-table tbody tr")).to_have_count(3)
    await expect(page.locator("#members-table")).to_contain_text('"name":"grace"')

    # an invalid payload gets a clear message and sends nothing
    await page.fill("#broadcast-payload", "{oops")
    await page.click("#broadcast-send")
    await expect(page.locator("#broadcast-result")).to_contain_text("not valid JSON")

    # a broadcast from the form reaches the room's clients verbatim
    drained = [await _drain(p) for p in peers]
    del drained
    await page.fill("#broadcast-room", "posts")
    await page.fill("#broadcast-payload", '{"type": "notice", "text": "deploy at 5"}')
    await page.click("#broadcast-send")
    await expect(page.locator("#broadcast-result")).to_have_text(
        "Delivered to 2 connections in posts."
    )
    assert await peers[3].recv() == {"type": "notice", "text": "deploy at 5"}
    assert await peers[4].recv() == {"type": "notice", "text": "deploy at 5"}

    # a connection's detail, then kick it
    victim = peers[6]
    await page.click(f'#connections-table tr[data-id="{victim.id}"]')
    await expect(page.locator("#detail-id")).to_have_text(victim.id)
    await expect(page.locator("#detail-meta")).to_contain_text('"plan": "pro"')
    await expect(page.locator("#detail-rooms")).to_have_text("support")

    await page.click("#broadcast-room")  # leave a realistic, readable state for the picture
    await page.fill("#broadcast-room", "lobby")
    await page.fill(
        "#broadcast-payload", '{"type": "announcement", "text": "Hello from the admin"}'
    )
    await page.click('#rooms-table tr[data-room="lobby"]')
    await page.click(f'#connections-table tr[data-id="{peers[1].id}"]')
    await expect(page.locator("#detail-id")).to_have_text(peers[1].id)
    await page.wait_for_function(
        "document.querySelectorAll('#chart-messages polyline').length === 2"
    )
    selected = page.locator(f'#connections-table tr[data-id="{peers[1].id}"]')
    await expect(selected).to_have_class(re.compile(r"\bselected\b"))
    await page.mouse.move(0, 0)
    await page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    await page.click(f'#connections-table tr[data-id="{victim.id}"]')
    await expect(page.locator("#detail-id")).to_have_text(victim.id)
    closed = asyncio.create_task(victim.expect_close())  # a live client keeps reading
    await page.click("#kick")
    await expect(page.locator("#kick-result")).to_contain_text("Disconnected")
    assert await closed == 4001
    await expect(page.locator(f'#connections-table tr[data-id="{victim.id}"]')).to_have_count(0)
    await expect(connections).to_have_text(str(len(PEOPLE) - 1))
    await expect(page.locator("#connection-hint")).to_contain_text("is gone")

    # readable at phone width: nothing wider than the screen
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.reload()
    await expect(connections).to_have_text(str(len(PEOPLE) - 1))
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    assert errors == []


async def _drain(peer: Peer) -> int:
    """Read whatever is already queued for ``peer``; returns how many messages."""
    count = 0
    while True:
        try:
            await peer.recv(timeout=0.05)
        except TimeoutError:
            return count
        count += 1
