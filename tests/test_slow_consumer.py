"""A client that never reads must not delay the others, and gets evicted."""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from lucent_ws import Limits, WebSocketManager

from .conftest import HubFactory, Peer, open_peer

HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def stalled_socket(host: str, port: int) -> socket.socket:
    """A raw client that completes the handshake, then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(HANDSHAKE.format(host=f"{host}:{port}").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_never_reading_client_does_not_delay_fifty_others(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(limits=Limits(max_outbound_buffer=256 * 1024, rate_limit=0))
    host, port = client.server.host, client.server.port
    assert isinstance(port, int)
    readers = [await open_peer(client) for _ in range(50)]
    peers.extend(readers)
    for peer in readers:
        await peer.join("news")
    loop = asyncio.get_running_loop()
    stalled = await loop.run_in_executor(None, stalled_socket, host, port)
    try:
        while len(manager) < 51:
            await asyncio.sleep(0.01)
        stalled_id = next(i for i in manager.connection_ids() if i not in {p.id for p in readers})
        manager.join_room(stalled_id, "news")

        async def drain(peer: Peer, count: int) -> list[int]:
            seen = []
            while len(seen) < count:
                seen.append((await peer.recv(timeout=10))["n"])
            return seen

        # Enough to fill the kernel's socket buffers (up to 4 MiB on loopback) and
        # then the server's own 256 KiB allowance for the stalled peer.
        count = 400
        receivers = [asyncio.create_task(drain(peer, count)) for peer in readers]
        pad = "x" * 16_000
        for n in range(count):
            recipients = manager.broadcast_to_room("news", {"n": n, "pad": pad})
            assert recipients >= 50
            await asyncio.sleep(0)
        results = await asyncio.wait_for(asyncio.gather(*receivers), timeout=20)
        assert all(seen == list(range(count)) for seen in results)
        assert manager.get_connection(stalled_id) is None
        assert manager.get_stats()["evictions"]["slow_consumer"] == 1
        assert manager.get_room_members("news") == [p.id for p in readers]
    finally:
        stalled.close()


async def test_server_closes_stalled_peer_socket(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(limits=Limits(max_outbound_buffer=64 * 1024, rate_limit=0))
    host, port = client.server.host, client.server.port
    assert isinstance(port, int)
    loop = asyncio.get_running_loop()
    stalled = await loop.run_in_executor(None, stalled_socket, host, port)
    try:
        while len(manager) < 1:
            await asyncio.sleep(0.01)
        for _ in range(2000):
            manager.broadcast_all({"pad": "y" * 8000})
            await asyncio.sleep(0)
            if len(manager) == 0:
                break
        assert len(manager) == 0
        # the server gives up on the socket: closed or aborted within the close timeout
        stalled.setblocking(False)
        deadline = loop.time() + manager.close_timeout + 2
        closed = False
        while loop.time() < deadline and not closed:
            try:
                chunk = stalled.recv(1 << 20)
                closed = chunk == b""
            except BlockingIOError:
                await asyncio.sleep(0.05)
            except ConnectionResetError:
                closed = True
        assert closed
    finally:
        stalled.close()


async def test_reader_survives_when_peer_vanishes(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    gone = await client.ws_connect("/ws")
    peers.append(stay := await open_peer(client))
    await stay.join("r")
    manager.join_room(manager.connection_ids()[0], "r")
    await gone.close()
    for i in range(20):
        manager.broadcast_to_room("r", {"i": i})
    assert [(await stay.recv())["i"] for _ in range(20)] == list(range(20))
    assert isinstance(gone, aiohttp.ClientWebSocketResponse)
