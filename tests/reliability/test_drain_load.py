"""Drain under load: SIGTERM with 200 healthy and 3 stalled clients on ``python -m lucent_ws``.

Healthy clients get 1001 within 1 s, handshakes during the drain get 503,
stalled clients (full buffers, never reading) are aborted, and the process
exits 0 within the documented bound: the close timeout (2 s by default), plus
1 s for the HTTP runner's cleanup, plus a margin.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from .support import RawClient, ServerProcess, unlimited_session

HEALTHY = 200
STALLED = 3
CLOSE_TIMEOUT = 2.0
EXIT_BOUND = CLOSE_TIMEOUT + 1.0 + 2.0  # close timeout + runner cleanup + margin
TOKEN = "drain-admin-token"


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, float]:
    async for _ in ws:
        pass
    return ws.close_code, time.monotonic()


@pytest.mark.slow
async def test_sigterm_drains_200_clients_and_aborts_stalled_ones(tmp_path: Path) -> None:
    server = ServerProcess(
        # A big outbound limit keeps the stalled peers from being evicted as slow
        # consumers before SIGTERM: they must still be connected, and stuck.
        [
            "--no-heartbeat",
            "--rate-limit=0",
            f"--admin-token={TOKEN}",
            f"--max-outbound-buffer={64 * 2**20}",
            f"--close-timeout={CLOSE_TIMEOUT}",
        ],
        tmp_path / "server.log",
    )
    try:
        await server.ready()
        base = f"http://127.0.0.1:{server.port}"
        async with unlimited_session() as session:
            gate = asyncio.Semaphore(50)

            async def connect() -> aiohttp.ClientWebSocketResponse:
                async with gate:
                    ws = await session.ws_connect(f"{base}/ws")
                    await ws.receive_json(timeout=10)
                    return ws

            healthy = await asyncio.gather(*(connect() for _ in range(HEALTHY)))
            watchers = [asyncio.create_task(closed_with(ws)) for ws in healthy]

            stalled = []
            for _ in range(STALLED):
                raw = await RawClient.connect(server.port, rcvbuf=4096)
                await raw.read_frame()
                raw.send_frame(0x1, b'{"type":"join","room":"stall"}')
                await raw.read_frame()
                stalled.append(raw)
            # 8 MB each: more than the kernel buffers hold, so data stays queued in
            # the server's transport and a close frame cannot get through.
            for _ in range(140):
                async with session.post(
                    f"{base}/admin/broadcast",
                    json={"room": "stall", "payload": "z" * 60_000},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
            async with session.get(
                f"{base}/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as resp:
                assert (await resp.json())["connections"] == HEALTHY + STALLED

            sigterm_at = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            first = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
            assert first[0]
            # Still draining (the stalled peers hold it open): new handshakes get 503.
            refused = 0
            for _ in range(3):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
                    await session.ws_connect(f"{base}/ws")
                assert refusal.value.status == 503
                refused += 1
            results = await asyncio.gather(*watchers)
            codes = {code for code, _ in results}
            slowest = max(at for _, at in results) - sigterm_at
            assert codes == {1001}
            assert slowest < 1.0, slowest

            for raw in stalled:
                assert await raw.drained_to_eof(EXIT_BOUND)
                raw.abort()
        exit_code = await asyncio.to_thread(server.proc.wait, EXIT_BOUND + 5)
        exited_after = time.monotonic() - sigterm_at
        assert exit_code == 0, server.output()
        assert exited_after < EXIT_BOUND, exited_after
        assert refused == 3
        assert "Traceback" not in server.output()
        print(
            f"\nFIGURE drain: {HEALTHY} healthy got 1001 within {slowest * 1000:.0f} ms, "
            f"{STALLED} stalled aborted, exit 0 after {exited_after:.2f} s"
        )
    finally:
        server.stop()
