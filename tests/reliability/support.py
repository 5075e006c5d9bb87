"""Helpers for the reliability tests: raw sockets, subprocess servers, latency figures."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from ..hubprocess import free_port

ROOT = Path(__file__).resolve().parents[2]


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def unlimited_session() -> aiohttp.ClientSession:
    """A client session with no cap on concurrent connections."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


class RawClient:
    """A WebSocket client on a plain socket: it reads only when told to.

    ``rcvbuf`` shrinks the kernel receive buffer before connecting, so a
    client that stops reading pushes back on the server almost at once.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, path: str = "/ws", *, rcvbuf: int | None = None, headers: str = ""
    ) -> RawClient:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
        client = cls(reader, writer)
        await client.handshake(port, path, headers)
        return client

    async def handshake(self, port: int, path: str, headers: str) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
            ).encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    async def read_frame(self) -> tuple[int, bytes]:
        """One server frame as ``(opcode, payload)``."""
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, await self.reader.readexactly(size)

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        """Write one masked client frame (the mask is zero: XOR leaves the payload as is)."""
        size = len(payload)
        if size < 126:
            header = bytes((0x80 * fin | opcode, 0x80 | size))
        elif size < 65536:
            header = bytes((0x80 * fin | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            header = bytes((0x80 * fin | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
        self.writer.write(header + b"\0\0\0\0" + payload)

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server's close frame (its code) or EOF/reset (None)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    opcode, payload = await self.read_frame()
                    if opcode == 0x8:
                        return int.from_bytes(payload[:2], "big") if payload else None
            except (asyncio.IncompleteReadError, ConnectionError):
                return None

    async def drained_to_eof(self, timeout: float) -> bool:
        """Read and drop everything; True once the server closed or reset the socket."""
        async with asyncio.timeout(timeout):
            try:
                while await self.reader.read(2**16):
                    pass
            except ConnectionError:
                pass
        return True

    def abort(self) -> None:
        self.writer.transport.abort()


class ServerProcess:
    """``python -m lucent_ws`` in a subprocess, stderr captured to a file."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lucent_ws", "--port", str(self.port), *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    async def ready(self, timeout: float = 15.0) -> None:
        """Wait until the server accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.output()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@asynccontextmanager
async def hub_process(tmp_path: Path, token: str, *args: str) -> AsyncIterator[ServerProcess]:
    """``python -m lucent_ws`` without heartbeat and with admin token ``token``, then stopped."""
    server = ServerProcess(
        ["--no-heartbeat", *args], tmp_path / "hub.log", env={"LUCENT_WS_ADMIN_TOKEN": token}
    )
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


def tcp_sockets(port: int, state: str) -> list[list[str]]:
    """The /proc/net/tcp{,6} rows of local ``port`` in ``state`` (hex, e.g. "01" established)."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                rows.append(fields)
    return rows
