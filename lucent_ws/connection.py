"""One client connection as the hub sees it, and the transport it writes to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

__all__ = ["CloseFunction", "Connection", "Transport"]


class Transport(Protocol):
    """The part of an :class:`asyncio.Transport` the hub writes to."""

    def write(self, data: bytes) -> None:
        """Write bytes without blocking."""

    def get_write_buffer_size(self) -> int:
        """Bytes accepted but not yet sent."""

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""

    def abort(self) -> None:
        """Close at once, discarding unsent data."""


CloseFunction = Callable[[int, str], Awaitable[object]]
"""``close(code, message)``: the I/O layer's graceful WebSocket close."""


class Connection:
    """One client connection.

    Hooks receive it: ``id`` (a UUID4 string), ``request`` (the handshake
    request, an ``aiohttp.web.Request`` under the aiohttp adapter), ``meta``
    (the metadata mapping, also reachable through ``get_meta``/``set_meta``)
    and ``rooms`` (read-only by convention; use the manager to change it), and
    ``version``, the protocol version it speaks (1, or 2 with ``?v=2``).
    The underscored attributes belong to the outbox and the closer.
    """

    __slots__ = (
        "_close",
        "_max_buffer",
        "_pending",
        "_summed",
        "_summed_bytes",
        "_transport",
        "closed",
        "connected_at",
        "id",
        "last_seen",
        "meta",
        "request",
        "rooms",
        "version",
    )

    def __init__(
        self,
        conn_id: str,
        transport: Transport,
        close: CloseFunction,
        *,
        request: Any = None,
        meta: Mapping[str, Any] | None = None,
        max_buffer: int,
        now: float,
        version: int = 1,
    ) -> None:
        self.id = conn_id
        self.version = version
        self.request = request
        self.meta: dict[str, Any] = dict(meta or {})
        self.rooms: set[str] = set()
        self.connected_at = now
        self.last_seen = now
        self.closed = False
        self._transport = transport
        self._close = close
        self._max_buffer = max_buffer
        # Frames queued since the last write. One list for the connection's lifetime,
        # emptied after each write: a new list per recipient per broadcast made full
        # garbage collections frequent and long.
        self._pending: list[bytes] = []
        # How many of the pending frames a burst check has added up, and their bytes.
        self._summed = 0
        self._summed_bytes = 0

    def __repr__(self) -> str:
        return f"<Connection {self.id} rooms={len(self.rooms)} closed={self.closed}>"
