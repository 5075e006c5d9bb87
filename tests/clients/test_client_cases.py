"""The shared behaviour table (cases.json), run against both official clients.

Each case scripts a fake hub (``fakehub.py``) that speaks the SPEC's frames and
lists the client's actions; the Python client runs in-process
(``runner.py``) and the JavaScript client in Node (``run_case.mjs``), and both
must observe exactly the case's events, messages and results.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ..test_browser_client import node_command
from .fakehub import FakeHub
from .runner import run_python_case

HERE = Path(__file__).parent
JS_CLIENT = HERE.parent.parent / "lucent_ws" / "client" / "lucent-ws.js"
CASES: list[dict[str, Any]] = json.loads((HERE / "cases.json").read_text())["cases"]


async def run_js_case(case: dict[str, Any], url: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *node_command(),
        str(HERE / "run_case.mjs"),
        str(JS_CLIENT),
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps(case).encode()), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.mark.parametrize("language", ["python", "js"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
async def test_case(case: dict[str, Any], language: str, aiohttp_server: Any) -> None:
    hub = FakeHub(case["server"])
    server = await aiohttp_server(hub.app)
    url = f"ws://127.0.0.1:{server.port}/ws"
    run = run_python_case if language == "python" else run_js_case
    observed = await run(case, url)
    print(f"{language}: {case['name']}: {json.dumps(observed)}")
    expected = case["expect"]
    assert hub.failures == [], hub.failures
    assert observed["events"] == expected["events"]
    assert observed["messages"] == expected["messages"]
    assert observed["results"] == expected["results"]
    if "state" in expected:
        assert observed["state"] == expected["state"]
    assert hub.connections == len(case["server"]), "connections made vs scripted"


async def test_chromium_session_storage_keeps_positions_across_a_reload(
    aiohttp_server: Any,
) -> None:
    """A reloaded page re-joins with ``since`` from sessionStorage (JavaScript only)."""
    from .test_js_client import browser_page

    joined = {
        "send": {"type": "joined", "room": "chat:1", "ref": "$ref", "epoch": "e1", "offset": 5}
    }
    message = {"type": "message", "room": "chat:1", "from": None, "payload": 6, "offset": 6}
    hub = FakeHub(
        [
            [{"hello": {"heartbeat": None}}, {"recv": {"type": "join", "since": "$absent"}}, joined,
             {"send": {**message, "epoch": "e1"}}],
            [{"hello": {"heartbeat": None}},
             {"recv": {"type": "join", "since": {"offset": 6, "epoch": "e1"}}},
             {"send": {**joined["send"], "offset": 6, "recovered": True, "missed": 0}}],
        ]
    )  # fmt: skip

    async def client_js(request: Any) -> Any:
        return web.FileResponse(JS_CLIENT)

    async def page_html(request: Any) -> Any:
        return web.Response(text=STORAGE_PAGE, content_type="text/html")

    hub.app.router.add_get("/ws/client.js", client_js)
    hub.app.router.add_get("/page.html", page_html)
    server = await aiohttp_server(hub.app)
    async with browser_page() as page:
        await page.goto(f"http://127.0.0.1:{server.port}/page.html")
        await page.wait_for_function("window.got && window.got.length === 1", timeout=10000)
        await page.reload()
        await page.wait_for_function("window.recovered !== undefined", timeout=10000)
        recovered = await page.evaluate("window.recovered")
    print("after the reload:", recovered)
    assert hub.failures == [], hub.failures
    assert hub.connections == 2
    assert recovered["recovered"] is True
    assert recovered["room"] == "chat:1"


STORAGE_PAGE = """<!doctype html><script type="module">
import { Client } from "/ws/client.js";
const client = new Client("/ws", { storage: sessionStorage });
client.on("recovered", (e) => { window.recovered = e; });
const room = await client.join("chat:1");
window.got = [];
for await (const m of room) window.got.push(m.payload);
</script>"""
