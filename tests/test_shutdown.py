"""SIGTERM on a real ``python run.py``: 1001 to every client, exit 0, stuck peers aborted."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from .conftest import Peer
from .hubprocess import HubProcess, hub_process

CLOSE_TIMEOUT = 3.0
EXIT_TIMEOUT = CLOSE_TIMEOUT + 15.0  # generous: the failure this catches is a hang


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def connect(session: aiohttp.ClientSession, hub: HubProcess) -> Peer:
    ws = await session.ws_connect(hub.url)
    hello = (await ws.receive(timeout=5)).json()
    assert hello["type"] == "connected"
    return Peer(ws, hello["id"])


async def terminate(hub: HubProcess) -> float:
    """Send SIGTERM; return the monotonic time it was sent."""
    sent = time.monotonic()
    hub.proc.send_signal(signal.SIGTERM)
    return sent


async def close_code_and_time(peer: Peer) -> tuple[int | None, float]:
    code = await peer.expect_close(timeout=EXIT_TIMEOUT)
    return code, time.monotonic()


async def test_sigterm_closes_every_client_with_1001_and_exits_0(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with hub_process("--no-heartbeat", tmp_path=tmp_path) as hub:
        clients = [await connect(session, hub) for _ in range(5)]
        await clients[0].join("posts")
        await terminate(hub)
        results = await asyncio.gather(*(close_code_and_time(c) for c in clients))
        assert [code for code, _ in results] == [1001] * len(clients)
        async with asyncio.timeout(EXIT_TIMEOUT):
            returncode = await hub.proc.wait()
        assert returncode == 0, hub.stderr()
        assert "Traceback" not in hub.stderr()


async def test_sigterm_with_no_clients_exits_0(tmp_path: Path) -> None:
    async with hub_process("--no-heartbeat", tmp_path=tmp_path) as hub:
        await terminate(hub)
        async with asyncio.timeout(EXIT_TIMEOUT):
            assert await hub.proc.wait() == 0, hub.stderr()


async def test_sigint_also_drains(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    async with hub_process("--no-heartbeat", tmp_path=tmp_path) as hub:
        peer = await connect(session, hub)
        hub.proc.send_signal(signal.SIGINT)
        assert await peer.expect_close(timeout=EXIT_TIMEOUT) == 1001
        async with asyncio.timeout(EXIT_TIMEOUT):
            assert await hub.proc.wait() == 0, hub.stderr()


# --- a stalled peer ----------------------------------------------------------------


def masked_text_frame(text: str) -> bytes:
    """A client (masked) text frame, as a browser would send it."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def read_until(sock: socket.socket, marker: bytes, seen: bytes = b"") -> bytes:
    loop = asyncio.get_running_loop()
    data = seen
    async with asyncio.timeout(5):
        while marker not in data:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, f"connection closed before {marker!r}: {data!r}"
            data += chunk
    return data


async def stalled_peer(port: int, room: str) -> socket.socket:
    """A raw client with a tiny receive buffer that joins ``room`` and then never reads."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /ws HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    response = await read_until(sock, b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101"), response
    await loop.sock_sendall(sock, masked_text_frame(f'{{"type":"join","room":"{room}"}}'))
    await read_until(sock, b'"joined"', response)
    return sock


@pytest.mark.slow
async def test_stalled_client_does_not_block_others_or_exit(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    args = (
        "--no-heartbeat",
        "--close-timeout",
        str(CLOSE_TIMEOUT),
        "--rate-limit",
        "0",
        # Big enough that the stalled peer is not evicted as a slow consumer first.
        "--max-outbound-buffer",
        str(256 * 1024 * 1024),
        "--log-level",
        "warning",
    )
    async with hub_process(*args, tmp_path=tmp_path) as hub:
        # Connected first, so a sequential shutdown would try it before the others.
        stalled = await stalled_peer(hub.port, "flood")
        try:
            publisher = await connect(session, hub)
            await publisher.join("flood")
            healthy = [await connect(session, hub) for _ in range(4)]
            chunk = "x" * 60_000
            for _ in range(150):  # about 9 MB, far more than the socket buffers hold
                await publisher.send({"type": "broadcast", "room": "flood", "payload": chunk})
            # Messages are handled in order: once this ack arrives, every broadcast
            # has been queued for the stalled peer.
            ack = await publisher.request(
                {"type": "broadcast", "room": "flood", "payload": 0, "ref": 1}
            )
            assert ack == {"type": "ack", "ref": 1, "delivered": 1}

            sent = await terminate(hub)
            results = await asyncio.gather(*(close_code_and_time(c) for c in [publisher, *healthy]))
            assert [code for code, _ in results] == [1001] * (len(healthy) + 1)
            # The healthy clients were closed in parallel with the stuck one, not
            # after its close timed out.
            slowest = max(at for _, at in results) - sent
            assert slowest < CLOSE_TIMEOUT, f"healthy clients waited {slowest:.1f}s"
            async with asyncio.timeout(EXIT_TIMEOUT):
                returncode = await hub.proc.wait()
            assert returncode == 0, hub.stderr()
        finally:
            stalled.close()
