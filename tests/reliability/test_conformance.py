"""RFC 6455 conformance: the Autobahn fuzzing cases (run by kosoku) against an echo route.

The echo route upgrades with :func:`lucent_ws.handler.websocket_response`, the
same settings the hub's endpoint uses (compression off, the hub's inbound size
limit, PING answered by the read loop), and writes its echoes with the hub's
own frame builder straight to the transport, as the manager does.

Excluded: 12.* and 13.* (permessage-deflate, which the hub turns off) and
7.9.5 (a close code aiohttp accepts although the case expects a refusal).
The 9.1-9.6 cases send messages of 64 KiB to 16 MiB: with the default 64 KiB
limit they must be refused with 1009, and with the limit raised to 16 MiB they
must pass like every other case.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import WSMsgType, web

from lucent_ws.config import Limits
from lucent_ws.frames import build_frame, text_frame
from lucent_ws.handler import websocket_response

from ..conftest import require

kosoku: Any
try:
    import kosoku
except ImportError:  # pragma: no cover - the test extra installs it
    kosoku = None

OP_BINARY = 0x2
EXCLUDED = ["12.*", "13.*", "7.9.5"]
LARGE_MESSAGE_CASES = ["9.1.*", "9.2.*", "9.3.*", "9.4.*", "9.5.*", "9.6.*"]
LIMITS_KEY = web.AppKey("limits", Limits)


async def echo(request: web.Request) -> web.WebSocketResponse:
    """Echo every message back, framed the way the manager frames hub output."""
    ws = websocket_response(request.app[LIMITS_KEY], close_timeout=2.0)
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    while True:
        msg = await ws.receive()
        if msg.type is WSMsgType.TEXT:
            transport.write(text_frame(msg.data.encode()))
        elif msg.type is WSMsgType.BINARY:
            transport.write(build_frame(OP_BINARY, msg.data))
        elif msg.type is WSMsgType.PING:
            await ws.pong(msg.data)
        elif msg.type is WSMsgType.PONG:
            pass
        else:
            break
    return ws


async def run_cases(
    aiohttp_server: Any, limits: Limits, cases: list[str] | None, exclude: list[str]
) -> list[Any]:
    require(kosoku is not None, "kosoku (pip install kosoku)")
    app = web.Application()
    app[LIMITS_KEY] = limits
    app.router.add_get("/", echo)
    server = await aiohttp_server(app)
    url = f"ws://127.0.0.1:{server.port}/"
    try:
        results: list[Any] = await kosoku.run_fuzzingclient(url, cases, exclude, concurrency=4)
    except kosoku.FailureError as failure:
        failed = [
            f"{r.case_id}: {r.behavior.value}/{r.behavior_close.value} {r.result} "
            f"{r.result_close} (close {r.remote_close_code})"
            for r in failure.results
            if not r.passed
        ]
        pytest.fail("Autobahn cases failed:\n" + "\n".join(failed))
    return results


async def test_autobahn_cases_pass_with_the_hub_settings(aiohttp_server: Any) -> None:
    results = await run_cases(aiohttp_server, Limits(), None, EXCLUDED + LARGE_MESSAGE_CASES)
    assert len(results) == 258
    assert all(r.passed for r in results)


async def test_messages_over_the_limit_are_refused_with_1009(aiohttp_server: Any) -> None:
    require(kosoku is not None, "kosoku (pip install kosoku)")
    app = web.Application()
    app[LIMITS_KEY] = Limits()
    app.router.add_get("/", echo)
    server = await aiohttp_server(app)
    try:
        await kosoku.run_fuzzingclient(
            f"ws://127.0.0.1:{server.port}/", ["9.1.2", "9.2.2"], None, concurrency=2
        )
    except kosoku.FailureError as failure:
        codes = {r.case_id: r.remote_close_code for r in failure.results}
    else:
        pytest.fail("messages of 256 KiB were echoed under a 64 KiB limit")
    assert codes == {"9.1.2": 1009, "9.2.2": 1009}


async def test_large_message_cases_pass_with_a_raised_limit(aiohttp_server: Any) -> None:
    limits = Limits(max_message_size=16 * 1024 * 1024)
    results = await run_cases(aiohttp_server, limits, LARGE_MESSAGE_CASES, [])
    assert len(results) == 42
    assert all(r.passed for r in results)
