"""A client closed while it is still sending learns why (lingering close, RFC 6455 section 7).

Each test floods a real hub process as fast as the client can send and checks
that the client reads its error replies and the server's close code, never a
reset (1006): for the rate limit and the error budget (1008), a message over
the size limit (1009), an admin kick (4001) and a shutdown (1001); with the
``websockets`` library and with Chromium. Before the lingering close, the
server closed its socket with the flood unread, the kernel answered with a
reset and every one of these clients saw 1006.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, require

from .support import RawClient, ServerProcess, hub_process

TOKEN = "hostile-close-admin-token"
PING = '{"type":"ping"}'


def hub(tmp_path: Path, *args: str) -> AbstractAsyncContextManager[ServerProcess]:
    return hub_process(tmp_path, TOKEN, *args)


async def flood(
    port: int,
    message: str | Callable[[int], str],
    *,
    trigger: Callable[[str], Awaitable[None]] | None = None,
    limit: float = 20.0,
) -> tuple[int | None, dict[str, int], int]:
    """Send as fast as the client can until the server closes; what did the client see?

    Returns the close code received (None: no close frame, i.e. 1006), the
    error replies by code, and how many messages were sent.
    """
    errors: dict[str, int] = {}
    sent = 0
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws", max_size=None, close_timeout=5, ping_interval=None
    ) as ws:
        hello = await ws.recv()
        conn_id = json.loads(hello)["id"]

        async def read() -> None:
            try:
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") == "error":
                        errors[msg["code"]] = errors.get(msg["code"], 0) + 1
            except websockets.ConnectionClosed:
                pass  # the close code is read below

        reader = asyncio.create_task(read())
        triggered = None
        try:
            async with asyncio.timeout(limit):
                while True:
                    await ws.send(message if isinstance(message, str) else message(sent))
                    sent += 1
                    if not sent % 64:
                        # websockets' send() suspends only when its buffer is full: a loop
                        # that never yields never runs the code reading the server's replies.
                        await asyncio.sleep(0)
                    if trigger is not None and triggered is None and sent == 2000:
                        triggered = asyncio.create_task(trigger(conn_id))
        except websockets.ConnectionClosed:
            pass
        await asyncio.wait_for(reader, 10)
        if triggered is not None:
            await triggered
        received = ws.protocol.close_rcvd
    return (received.code if received is not None else None), errors, sent


async def test_rate_limited_flood_sees_its_errors_and_1008(tmp_path: Path) -> None:
    async with hub(tmp_path) as server:
        code, errors, sent = await flood(server.port, PING)
    print(f"\nrate-limit flood: sent {sent}, errors {errors}, close code {code}")
    assert code == 1008
    assert errors.get("rate_limited", 0) >= 100


async def test_error_budget_flood_sees_its_errors_and_1008(tmp_path: Path) -> None:
    async with hub(tmp_path, "--rate-limit", "0") as server:
        code, errors, sent = await flood(server.port, "{not json")
    print(f"\nerror-budget flood: sent {sent}, errors {errors}, close code {code}")
    assert code == 1008
    assert errors.get("invalid_json", 0) > 100


async def test_oversized_message_in_a_flood_gets_1009(tmp_path: Path) -> None:
    big = '{"type":"ping","pad":"' + "x" * 70_000 + '"}'
    async with hub(tmp_path, "--rate-limit", "0") as server:
        code, _errors, sent = await flood(server.port, lambda n: big if n == 2000 else PING)
    print(f"\n1009 in a flood: sent {sent}, close code {code}")
    assert code == 1009


async def test_kick_during_a_flood_gets_4001(tmp_path: Path) -> None:
    async with hub(tmp_path, "--rate-limit", "0") as server:

        async def kick(conn_id: str) -> None:
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{server.port}/admin/connections/{conn_id}"
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with http.delete(url, headers=headers) as response:
                    assert response.status == 200

        code, _, sent = await flood(server.port, PING, trigger=kick)
    print(f"\nkick in a flood: sent {sent}, close code {code}")
    assert code == 4001


async def test_shutdown_during_a_flood_gets_1001(tmp_path: Path) -> None:
    async with hub(tmp_path, "--rate-limit", "0") as server:

        async def terminate(_: str) -> None:
            server.proc.send_signal(signal.SIGTERM)

        code, _, sent = await flood(server.port, PING, trigger=terminate)
    print(f"\nshutdown in a flood: sent {sent}, close code {code}")
    assert code == 1001


async def test_shutdown_waits_for_a_client_that_answers_the_close_late(tmp_path: Path) -> None:
    # The client keeps sending for a while after the server's close frame (it was in the
    # middle of a burst) and only then answers it. The process must not exit meanwhile:
    # its exit would close the socket with that data unread, i.e. with a reset.
    async with hub(tmp_path, "--close-timeout", "5") as server:
        client = await RawClient.connect(server.port)
        assert client.status == 101
        assert (await client.read_frame())[0] == 0x1  # the hello
        server.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            while (frame := await client.read_frame())[0] != 0x8:
                pass
        code = int.from_bytes(frame[1][:2], "big")
        loop = asyncio.get_running_loop()
        late = loop.time() + 0.5
        sent = 0
        try:
            while loop.time() < late:
                client.send_frame(0x1, PING.encode())
                sent += 1
                await client.writer.drain()
                await asyncio.sleep(0.001)
            alive = server.proc.poll() is None
            client.send_frame(0x8, code.to_bytes(2, "big"))
            await client.writer.drain()
            async with asyncio.timeout(10):
                rest: bytes | None = await client.reader.read()
        except ConnectionError:  # the hub closed (or exited) before the client's close
            alive, rest = False, None
        client.writer.close()
        returncode = await asyncio.to_thread(server.proc.wait, 10)
    print(f"\nlate close answer: code {code}, {sent} frames after it, hub alive {alive}")
    assert code == 1001
    assert alive, "the hub exited while the client's close was still to come"
    assert rest == b""
    assert returncode == 0


FLOOD_JS = """
async ({url, message}) => {
  const errors = {};
  const ws = new WebSocket(url);
  return await new Promise((resolve) => {
    let sent = 0;
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "error") errors[msg.code] = (errors[msg.code] || 0) + 1;
    };
    ws.onclose = (event) => resolve({code: event.code, errors, sent});
    const pump = () => {
      while (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < (1 << 20)) {
        ws.send(message);
        sent++;
      }
      if (ws.readyState === WebSocket.OPEN) setTimeout(pump, 0);
    };
    ws.onopen = pump;
  });
}
"""


@pytest.mark.parametrize(
    ("args", "message", "code", "error"),
    [([], PING, 1008, "rate_limited"), (["--rate-limit", "0"], "{bad", 1008, "invalid_json")],
    ids=["rate-limit", "error-budget"],
)
async def test_chromium_flood_sees_the_close_code(
    tmp_path: Path, args: list[str], message: str, code: int, error: str
) -> None:
    require(shutil.which("chromium") and os.path.exists(CHROMIUM), "chromium")  # noqa: ASYNC240
    require(importlib.util.find_spec("playwright"), "the playwright package")
    import playwright.async_api as playwright_api

    async with hub(tmp_path, *args) as server, playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{server.port}/admin/")
            result: dict[str, Any] = await page.evaluate(
                FLOOD_JS, {"url": f"ws://127.0.0.1:{server.port}/ws", "message": message}
            )
        finally:
            await browser.close()
    print(f"\nChromium flood ({error}): {result}")
    assert result["code"] == code
    assert result["errors"].get(error, 0) >= 100
