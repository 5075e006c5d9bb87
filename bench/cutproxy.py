"""A TCP proxy on loopback that can cut every connection through it at once.

The connections a network drop would break: the client on one side sees its socket
reset (no close frame, 1006), the server sees the proxy's side go away.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

from bench.servers import HOST


class _Pipe(asyncio.Protocol):
    """One direction's transport; whatever arrives is written to the ``peer``."""

    def __init__(self, proxy: CutProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no subclass
        self.proxy.transports.add(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.proxy.transports.discard(self.transport)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class CutProxy:
    """Listens on a free loopback port and forwards to ``HOST:target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.transports: set[asyncio.Transport] = set()
        self.cuts = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accepted, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _accepted(self) -> _Pipe:
        down = _Pipe(self)
        asyncio.get_running_loop().create_task(self._connect(down))
        return down

    async def _connect(self, down: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, up = await loop.create_connection(lambda: _Pipe(self), HOST, self.target)
        except OSError:
            if down.transport is not None:
                down.transport.abort()
            return
        up.peer, down.peer = down, up
        assert up.transport is not None
        for chunk in down.early:
            up.transport.write(chunk)
        down.early.clear()

    def cut(self) -> None:
        """Reset every connection through the proxy."""
        self.cuts += 1
        self._abort_all()

    def _abort_all(self) -> None:
        for transport in list(self.transports):
            transport.abort()

    async def close(self) -> None:
        """Stop listening and reset what is left."""
        self._abort_all()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
