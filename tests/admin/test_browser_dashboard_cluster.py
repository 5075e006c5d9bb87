"""The dashboard in Chromium shows a cluster's nodes, evictions by reason and the policies.

Two nodes share an in-process bus (:class:`~lucent_ws.broker.memory.MemoryBroker`);
the dashboard of node A must list both nodes with their own figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.broker.memory import MemoryBroker, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.policy import RoomPolicy
from tests.conftest import Peer, open_peer

from ..fakes import fake_connect
from ..waiting import wait_until
from .conftest import AUTH, TOKEN
from .test_browser_dashboard import browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POLICIES = [
    RoomPolicy("chat:*", presence=True, join_leave=True, presence_info=("name",), history_size=50),
    RoomPolicy("announcements", client_publish="none"),
    RoomPolicy("chat:vip:*", max_members=10),
]


@pytest.fixture
async def node_b() -> AsyncIterator[tuple[WebSocketManager, MemoryBroker, MemoryStore]]:
    store = MemoryStore()
    manager = WebSocketManager(heartbeat=None)
    broker = MemoryBroker(store, node_id="node-b")
    await broker.start(manager)
    await broker.wait_until_up()
    yield manager, broker, store
    await broker.stop()


async def test_nodes_evictions_and_policies_in_chromium(
    aiohttp_client: Any,
    browser: Any,  # noqa: F811
    peers: list[Peer],
    node_b: tuple[WebSocketManager, MemoryBroker, MemoryStore],
) -> None:
    from playwright.async_api import expect

    manager_b, _, store = node_b
    manager_a = WebSocketManager(heartbeat=None, policies=POLICIES)
    app = create_app(
        manager=manager_a,
        broker=MemoryBroker(store, node_id="node-a"),
        admin_token=TOKEN,
        limits=Limits(rate_limit=0),
    )
    client = await aiohttp_client(app)
    for room in ("chat:1", "chat:1", "lobby"):
        peer = await open_peer(client)
        await peer.join(room)
        peers.append(peer)
    remote = [fake_connect(manager_b)[0] for _ in range(2)]
    for conn in remote:
        manager_b.join_room(conn.id, "chat:1")
    await wait_until(lambda: manager_a.get_stats()["connections"] == 5, what="5 connections")
    # Two kicks on node A: the evictions table counts them under "kick".
    for peer in peers[1:]:
        async with client.delete(f"/admin/connections/{peer.id}", headers=AUTH) as resp:
            assert resp.status == 200
    await wait_until(lambda: manager_a.counters.evictions["kick"] == 2, what="2 kicks")

    page = await browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(str(client.make_url("/admin/")))
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await expect(page.locator("#stat-connections")).to_have_text("3")

    nodes = page.locator("#nodes-table tbody tr")
    await expect(nodes).to_have_count(2)
    await expect(page.locator('#nodes-table tr[data-node="node-a"]')).to_contain_text("this node")
    node_b_cells = page.locator('#nodes-table tr[data-node="node-b"] td')
    await expect(node_b_cells.nth(1)).to_have_text("2")  # node B's own connections
    await expect(page.locator('#nodes-table tr[data-node="node-a"] td').nth(1)).to_have_text("1")
    await expect(page.locator("#nodes-hint")).to_have_text("2 nodes · broker up")
    await expect(page.locator("#nodes-empty")).to_be_hidden()

    kick = page.locator('#evictions-table tr[data-reason="kick"] td.num')
    await expect(kick).to_have_text("2")
    await expect(page.locator('#evictions-table tr[data-reason="heartbeat"] td.num')).to_have_text(
        "0"
    )

    rows = page.locator("#policies-table tbody tr")
    await expect(rows).to_have_count(len(POLICIES) + 1)
    patterns = await rows.evaluate_all("rows => rows.map(r => r.dataset.pattern)")
    print(f"FIGURE policies shown in order: {patterns}")
    assert patterns == ["announcements", "chat:vip:*", "chat:*", "*"]
    announcements = page.locator('#policies-table tr[data-pattern="announcements"]')
    await expect(announcements).to_contain_text("no (server only)")
    chat = page.locator('#policies-table tr[data-pattern="chat:*"]')
    await expect(chat).to_contain_text("on, diffs")
    await expect(chat).to_contain_text("name")
    await expect(page.locator('#policies-table tr[data-pattern="*"]')).to_contain_text("default")
    assert errors == []
