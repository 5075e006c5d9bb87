"""Load client connections: a raw WebSocket over an asyncio protocol.

A connection starts in ``FRAMES`` mode (parses frames, queues text messages for
``recv``), then switches to ``DRAIN`` (discards) once set up; measured phases pause it
and let :mod:`bench.throughput`'s reader read its socket. In ``FRAMES`` mode (and in
``DRAIN`` mode when ``WsConn.watch_pings`` is set) a JSON ``{"type":"ping"}`` from the
server is answered with ``{"type":"pong"}``.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import orjson

from bench.frames import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    client_frame,
    close_frame,
    handshake_request,
    parse_frames,
)

FRAMES, DRAIN = range(2)

_PONG = client_frame(b'{"type":"pong"}')
_PING_MARK = b'"ping"'


class HandshakeError(Exception):
    """The server refused the WebSocket upgrade."""


class WsConn(asyncio.Protocol):
    """One client WebSocket connection."""

    watch_pings = False  # answer JSON pings outside FRAMES mode (costs a scan per read)

    def __init__(self, request: bytes) -> None:
        self.transport: asyncio.Transport | None = None
        self.mode = FRAMES
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._request = request
        self._handshaken = False
        self._open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._messages: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if self.mode == FRAMES:
            self._frames_received(data)
        elif self.watch_pings and _PING_MARK in data:
            self._answer_ping()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self._open.done():
            self._open.set_exception(exc or ConnectionResetError("closed during handshake"))
        self._wake()

    # receiving in FRAMES mode
    def _frames_received(self, data: bytes) -> None:
        self._buf += data
        if not self._handshaken:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buf[:end]).split(b"\r\n", 1)[0]
            del self._buf[: end + 4]
            if b" 101 " not in status:
                self._open.set_exception(HandshakeError(status.decode(errors="replace")))
                return
            self._handshaken = True
            self._open.set_result(None)
        for opcode, body in parse_frames(self._buf):
            if opcode == OP_TEXT:
                if body == b'{"type":"ping"}' or body == b'{"type": "ping"}':
                    self._answer_ping()
                else:
                    self._messages.append(body)
            elif opcode == OP_PING:
                self._send(client_frame(body, OP_PONG))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(body[:2], "big") if len(body) >= 2 else None
                if not self.closed.done():
                    self.closed.set_result(code)
                self._send(close_frame())
        self._wake()

    def _answer_ping(self) -> None:
        self._send(_PONG)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    # public API
    async def opened(self) -> None:
        """Wait for the upgrade to complete."""
        await self._open

    async def recv(self) -> bytes:
        """The next text message (``FRAMES`` mode)."""
        while not self._messages:
            if self.closed.done():
                raise ConnectionResetError("connection closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._messages.popleft()

    async def recv_json(self) -> Any:
        """The next text message, decoded."""
        return orjson.loads(await self.recv())

    async def expect(self, msg_type: str) -> dict[str, Any]:
        """The next message of ``msg_type``, skipping others."""
        while True:
            msg = await self.recv_json()
            if isinstance(msg, dict) and msg.get("type") == msg_type:
                return msg
            if isinstance(msg, dict) and msg.get("type") == "error":
                raise RuntimeError(f"server error: {msg}")

    def send_json(self, obj: object) -> None:
        """Send one JSON text message."""
        self._send(client_frame(orjson.dumps(obj)))

    def send_raw(self, frame: bytes) -> None:
        """Send a prebuilt frame."""
        self._send(frame)

    async def join(self, room: str, timeout: float = 15.0) -> None:
        """Join ``room`` and wait for ``joined``."""
        self.send_json({"type": "join", "room": room})
        async with asyncio.timeout(timeout):
            await self.expect("joined")

    def drain(self) -> None:
        """Switch to ``DRAIN`` mode: discard everything but answer pings."""
        self.mode = DRAIN
        self._buf.clear()
        self._messages.clear()

    async def close(self, timeout: float = 5.0) -> int | None:
        """Close handshake: send close, wait for the server's close or EOF, then drop."""
        self.mode = FRAMES
        self._send(close_frame())
        try:
            return await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        except TimeoutError:
            return None
        finally:
            if self.transport is not None:
                self.transport.close()

    def fileno(self) -> int:
        """The socket's file descriptor."""
        assert self.transport is not None
        return int(self.transport.get_extra_info("socket").fileno())

    def pause(self) -> None:
        """Stop reading here (another process reads the socket meanwhile)."""
        if self.transport is not None:
            self.transport.pause_reading()

    def closing(self) -> bool:
        """True once the connection is closed or closing."""
        return self.transport is None or self.transport.is_closing()

    def resume(self) -> None:
        """Read here again, woken for every byte (the reader may have batched reads)."""
        if self.transport is not None and not self.transport.is_closing():
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake."""
        if self.transport is not None:
            self.transport.abort()


async def connect(
    host: str, port: int, path: str = "/ws", timeout: float = 15.0
) -> tuple[WsConn, str]:
    """Open a WebSocket and read the ``connected`` greeting; return it and its id."""
    loop = asyncio.get_running_loop()
    request = handshake_request(host, port, path)
    async with asyncio.timeout(timeout):
        _, conn = await loop.create_connection(lambda: WsConn(request), host, port)
        await conn.opened()
        hello = await conn.expect("connected")
    return conn, str(hello["id"])


async def connect_many(
    host: str,
    port: int,
    count: int,
    *,
    room: str | None = None,
    concurrency: int = 100,
    into: list[WsConn] | None = None,
    path: str = "/ws",
) -> list[WsConn]:
    """Open ``count`` connections (joined to ``room`` when given), ``concurrency`` at a time.

    Connections are appended to ``into`` (a new list by default) as they open, so a
    progress display can watch it fill.
    """
    conns: list[WsConn] = [] if into is None else into
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            conn, _ = await connect(host, port, path)
            if room is not None:
                await conn.join(room)
            conns.append(conn)

    await asyncio.gather(*(one() for _ in range(count)))
    return conns


async def close_all(conns: Iterable[WsConn]) -> None:
    """Abort every connection at once (teardown between phases)."""
    for conn in conns:
        conn.abort()
    await asyncio.sleep(0.2)
