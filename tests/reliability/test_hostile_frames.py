"""Frames below the JSON protocol: PING floods, unmasked frames, resets, aborted sockets.

- PING and PONG frames take tokens from the connection's bucket: two clients
  flooding PINGs are answered ``rate_limited`` and closed with 1008, and a
  bystander's round trip under the flood stays within 2x of the quiet figure
  measured in the same test (before: every PING was answered, nobody was
  evicted, the bystander's p99 went from 0.4 ms to tens of ms).
- A client frame without a mask closes the connection with 1002 (RFC 6455 5.1).
- A peer that vanishes while a PONG write waits (EPIPE as well as ECONNRESET) is a
  disconnect, not an internal error with a traceback.
- An evicted slow consumer is aborted with ``SO_LINGER`` 0: the kernel drops the
  unsent data at once instead of keeping it in FIN-WAIT-1 for minutes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lucent_ws import WebSocketManager, create_app

from .support import ROOT, RawClient, ServerProcess, hub_process, percentile, tcp_sockets

TOKEN = "hostile-frames-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def hub(tmp_path: Path, *args: str) -> AbstractAsyncContextManager[ServerProcess]:
    return hub_process(tmp_path, TOKEN, *args)


async def round_trips(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[float]:
    """``count`` ping/pong round trips in ms, at most one per 12 ms.

    Paced under the hub's default rate limit (100/s): the bystander is well-behaved.
    """
    times = []
    for ref in range(count):
        start = time.perf_counter()
        await ws.send_str(json.dumps({"type": "ping", "ref": ref}))
        reply = await ws.receive_json(timeout=10)
        times.append((time.perf_counter() - start) * 1000)
        assert reply == {"type": "pong", "ref": ref}, reply
        await asyncio.sleep(max(0.0, 0.012 - (time.perf_counter() - start)))
    return times


async def evictions(port: int) -> dict[str, int]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/admin/stats", headers=AUTH) as response,
    ):
        stats = await response.json()
    return dict(stats["evictions"])


async def test_ping_flood_is_rate_limited_and_spares_a_bystander(tmp_path: Path) -> None:
    async with hub(tmp_path) as server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"http://127.0.0.1:{server.port}/ws")
        await ws.receive_json()
        await round_trips(ws, 50)  # warm up
        quiet = await round_trips(ws, 200)
        flooders = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.reliability.flooder",
                str(server.port),
                "60000",
                "5",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)
        loud = await round_trips(ws, 300)
        outputs = [json.loads((await proc.communicate())[0]) for proc in flooders]
        await asyncio.sleep(0.5)
        quiet += await round_trips(ws, 200)  # the quiet figure: before and after, pooled
        evicted = await evictions(server.port)
        await ws.close()
    quiet_p99, loud_p99 = percentile(quiet, 0.99), percentile(loud, 0.99)
    print(
        f"\nPING flood {outputs}: bystander p50 {percentile(quiet, 0.5):.2f} -> "
        f"{percentile(loud, 0.5):.2f} ms, p99 {quiet_p99:.2f} -> {loud_p99:.2f} ms "
        f"({loud_p99 / quiet_p99:.2f}x); evictions {evicted}"
    )
    assert sum(out["pings"] for out in outputs) > 100_000
    assert evicted["rate_limit"] >= 2
    assert loud_p99 <= 2 * quiet_p99


async def test_unmasked_frame_closes_with_1002(tmp_path: Path) -> None:
    async with hub(tmp_path) as server:
        client = await RawClient.connect(server.port)
        assert client.status == 101
        await client.read_frame()  # connected
        payload = b'{"type":"ping"}'
        client.writer.write(bytes((0x81, len(payload))) + payload)  # no mask bit
        code = await client.close_code()
        client.abort()
        evicted = await evictions(server.port)
    print(f"\nunmasked frame: close code {code}, evictions {evicted}")
    assert code == 1002
    assert evicted.get("protocol_error") == 1


async def test_reset_during_a_ping_flood_is_a_disconnect(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A PONG write waiting on a full buffer when the peer resets fails with whatever
    # error the socket reported: ECONNRESET or, as here, EPIPE (BrokenPipeError).
    async def broken_pipe(self: web.WebSocketResponse, message: bytes = b"") -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(web.WebSocketResponse, "pong", broken_pipe)
    manager = WebSocketManager(heartbeat=None)
    client = await aiohttp_client(create_app(manager=manager, heartbeat=False, admin=False))
    ws = await client.ws_connect("/ws", autoping=False)
    await ws.receive_json()
    with caplog.at_level(logging.DEBUG, logger="lucent_ws"):
        await ws.ping()
        async with asyncio.timeout(5):
            while len(manager):
                await asyncio.sleep(0.01)
    await ws.close()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    print(f"\npeer gone during a PONG write: {len(errors)} warnings or errors logged")
    assert errors == []
    assert manager.counters.evictions["internal_error"] == 0


def fin_wait_sockets(port: int) -> tuple[int, int]:
    """Sockets of the server's port in FIN-WAIT-1, and the bytes they still hold to send."""
    rows = tcp_sockets(port, "04")  # TCP_FIN_WAIT1
    return len(rows), sum(int(fields[4].split(":")[0], 16) for fields in rows)


async def test_evicted_slow_consumer_leaves_nothing_in_the_kernel(tmp_path: Path) -> None:
    async with hub(tmp_path, "--close-timeout", "0.5") as server:
        stuck = await RawClient.connect(server.port, rcvbuf=4096)
        hello = json.loads((await stuck.read_frame())[1])
        payload = {"pad": "x" * 60_000}
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # 12 MB for a client that reads nothing: 1013
                async with http.post(
                    f"http://127.0.0.1:{server.port}/admin/send",
                    json={"id": hello["id"], "payload": payload},
                    headers=AUTH,
                ) as response:
                    if response.status == 404:
                        break  # evicted
        await asyncio.sleep(1.5)  # past the close timeout: the stuck socket was aborted
        count, queued = fin_wait_sockets(server.port)
        evicted = await evictions(server.port)
        stuck.abort()
    print(f"\nevicted slow consumer: {count} sockets in FIN-WAIT-1 holding {queued} bytes")
    assert evicted["slow_consumer"] == 1
    assert count == 0
