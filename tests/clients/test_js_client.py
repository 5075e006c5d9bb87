"""lucent-ws.js: served by the hub, run in real Chromium against a real hub, backoff in Node."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lucent_ws import EvictionReason, WebSocketManager
from lucent_ws.client import Client

from ..conftest import CHROMIUM, CHROMIUM_ARGS, require
from ..hubprocess import free_port, hub_process
from ..test_browser_client import node_command
from ..waiting import wait_until
from .support import ks_critical, ks_uniform, local_hub

HERE = Path(__file__).parent
JS_CLIENT = HERE.parent.parent / "lucent_ws" / "client" / "lucent-ws.js"

START_PAGE_CLIENT = """async (url) => {
  const { Client } = await import("/ws/client.js");
  window.events = [];
  window.messages = [];
  const client = new Client(url, {
    backoff: { base: 50, cap: 400 },
    storage: sessionStorage,
    onEvent: (e) => window.events.push(e),
  });
  window.client = client;
  const room = await client.join("chat:1");
  (async () => { for await (const m of room) window.messages.push(m.payload); })();
  return client.id;
}"""


@asynccontextmanager
async def browser_page() -> AsyncIterator[Any]:
    """A page of a fresh Chromium (Playwright)."""
    require(shutil.which("chromium") and os.path.exists(CHROMIUM), "chromium")  # noqa: ASYNC240
    require(importlib.util.find_spec("playwright"), "the playwright package")
    import playwright.async_api as playwright_api

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    async with browser_page() as opened:
        yield opened


async def kinds(page: Any) -> list[str]:
    events = await page.evaluate("window.events.map((e) => e.kind + (e.code ? ':' + e.code : ''))")
    return [e for e in events if e != "connecting"]


async def test_hub_serves_client_js_with_an_etag() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    async with local_hub(manager) as url, aiohttp.ClientSession() as http:
        js_url = url.replace("ws://", "http://") + "/client.js"
        async with http.get(js_url) as first:
            body = await first.read()
            etag = first.headers["ETag"]
            assert first.status == 200
            assert first.content_type == "text/javascript"
            assert "no-cache" in first.headers["Cache-Control"]
        assert body == JS_CLIENT.read_bytes()
        async with http.get(js_url, headers={"If-None-Match": etag}) as again:
            assert again.status == 304
            assert await again.read() == b""


async def test_chromium_page_reconnects_and_rejoins_after_the_hub_is_killed(
    page: Any, tmp_path: Path
) -> None:
    port = free_port()
    async with hub_process("--no-heartbeat", tmp_path=tmp_path, port=port) as hub:
        await page.goto(f"http://127.0.0.1:{port}/ws/client.js")
        first_id = await page.evaluate(START_PAGE_CLIENT, hub.url)
        assert first_id
        hub.proc.kill()
    await page.wait_for_function("window.client.state !== 'connected'", timeout=5000)
    await asyncio.sleep(0.5)  # retrying against a closed port
    async with hub_process("--no-heartbeat", tmp_path=tmp_path, port=port) as hub:
        await page.wait_for_function(
            "window.client.state === 'connected' && window.client.rooms.get('chat:1').joined",
            timeout=15000,
        )
        async with Client(hub.url) as publisher:
            ack = await (await publisher.join("chat:1")).publish({"after": "restart"})
        assert ack.delivered == 1
        await page.wait_for_function("window.messages.length === 1", timeout=5000)
        assert await page.evaluate("window.messages") == [{"after": "restart"}]
        assert await page.evaluate("window.client.id") != first_id
        events = await kinds(page)
    print("browser events:", events)
    assert events[:2] == ["connected", "disconnected:1006"]
    assert events[-1] == "connected"


async def test_chromium_4001_is_final_and_1013_reconnects(page: Any) -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    async with local_hub(manager) as url:
        await page.goto(url.replace("ws://", "http://") + "/client.js")
        first = await page.evaluate(START_PAGE_CLIENT, url)
        manager.evict(first, 1013, EvictionReason.SLOW_CONSUMER, "Slow consumer")
        await wait_until(
            lambda: (m := manager.get_room_members("chat:1")) and m != [first], 10, "re-join"
        )
        second = manager.get_room_members("chat:1")[0]
        assert await page.evaluate("window.client.id") == second
        manager.disconnect(second)
        await page.wait_for_function("window.client.state === 'closed'", timeout=5000)
        await asyncio.sleep(1.0)  # more than two backoff windows: no reconnect
        assert len(manager) == 0
        assert await page.evaluate("window.client.closeCode") == 4001
    events = await kinds(page)
    print("browser events:", events)
    assert events == ["connected", "disconnected:1013", "connected", "closed:4001"]


async def test_js_backoff_delays_are_uniform_over_the_full_jitter_window() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    proc = await asyncio.create_subprocess_exec(
        *node_command(),
        str(HERE / "backoff_samples.mjs"),
        str(JS_CLIENT),
        url,
        "1000",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    samples = json.loads(out)
    normalised = [delay / min(4, 0.5 * 2 ** min(attempt, 64)) for delay, attempt in samples]
    assert all(0 <= x <= 1 for x in normalised)
    d, critical = ks_uniform(normalised), ks_critical(len(normalised))
    print(f"JS KS D={d:.4f} over n={len(normalised)}, critical {critical:.4f} (alpha 0.001)")
    assert d < critical
    assert ks_uniform([x / 2 for x in normalised]) > critical


def readme_page() -> str:
    text = (HERE.parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Official clients", 1)[1]
    match = re.search(r"```html\n(.*?)```", section, re.DOTALL)
    assert match, "no HTML block under 'Official clients'"
    return match.group(1)


async def test_readme_browser_page_works_as_printed(page: Any) -> None:
    html = readme_page()
    lines = [line for line in html.splitlines() if line.strip()]
    print(f"README page: {len(lines)} lines")
    assert len(lines) <= 10

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    async with local_hub(
        manager, extra=lambda app: app.router.add_get("/page.html", serve_page)
    ) as url:
        await page.goto(url.replace("ws://", "http://").removesuffix("/ws") + "/page.html")
        await wait_until(lambda: manager.get_room_members("posts"), 10, "the page joined")
        manager.broadcast_to_room("posts", {"type": "post:created", "doc": {"id": 1}})
        await page.wait_for_function("document.getElementById('log').textContent.length > 0")
        shown = await page.evaluate("document.getElementById('log').textContent")
    assert shown == '{"type":"post:created","doc":{"id":1}}\n'


async def test_chromium_online_event_cuts_a_long_reconnect_wait_short(page: Any) -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    async with local_hub(manager) as url:
        await page.goto(url.replace("ws://", "http://") + "/client.js")
        first = await page.evaluate(
            START_PAGE_CLIENT.replace("base: 50, cap: 400", "base: 60000, cap: 60000"), url
        )
        # The next wait: 0.9 x 60 s; the early attempt then jitters with Math.random again.
        await page.evaluate(
            "() => { window.client.backoff.attempt = 5; let once = true;"
            " window.client.random = () => (once ? ((once = false), 0.9) : Math.random()); }"
        )
        manager.evict(first, 1013, EvictionReason.SLOW_CONSUMER, "Slow consumer")
        await page.wait_for_function("window.client.state === 'connecting'", timeout=5000)
        delay = await page.evaluate(
            "window.events.filter((e) => e.kind === 'connecting').pop().delay"
        )
        await page.evaluate("window.dispatchEvent(new Event('online'))")
        await page.wait_for_function("window.client.state === 'connected'", timeout=3000)
        woke = await page.evaluate(
            "window.events.filter((e) => e.kind === 'connecting').pop().delay"
        )
    print(f"backoff wait {delay:.0f} ms; after 'online' the attempt came within {woke:.0f} ms")
    assert delay == 54000
    assert woke <= 1000


LAST_DELAY = "window.events.filter((e) => e.kind === 'connecting').pop().delay"


async def test_chromium_client_fails_over_along_a_url_list_and_asks_a_url_function(
    page: Any,
) -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    dead = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens: the first attempt fails
    async with local_hub(manager) as url:
        await page.goto(url.replace("ws://", "http://") + "/client.js")
        reached = await page.evaluate(
            """async ([urls]) => {
              const { Client } = await import("/ws/client.js");
              window.events = [];
              const client = new Client(urls, {
                backoff: { base: 20, cap: 100 }, onEvent: (e) => window.events.push(e),
              });
              await client.join("chat:1");
              let asked = 0;
              const byFunction = new Client(async () => { asked += 1; return urls[1]; });
              await byFunction.join("chat:2");
              const result = [client.url, byFunction.url, asked];
              client.close();
              byFunction.close();
              return result;
            }""",
            [[dead, url]],
        )
        events = await kinds(page)
    print("reached:", reached, "events:", events)
    assert reached == [url + "?v=2", url + "?v=2", 1]
    assert events[:2] == ["disconnected:1006", "connected"]
