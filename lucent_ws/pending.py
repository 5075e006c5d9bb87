"""Sockets that have not upgraded: a request-header timeout, a cap, and descriptor exhaustion.

A plain TCP connection that sends nothing, half a request, or a header line
every few seconds costs a file descriptor and counts against nothing in
aiohttp. :class:`PendingSockets` wraps the server's protocol factory: every
accepted socket is pending until its WebSocket upgrade (the endpoint calls
:func:`release_pending`), and

- a socket that has not sent a complete request header within
  ``header_timeout`` seconds of its accept is aborted;
- past ``max_pending`` pending sockets, the oldest is aborted to make room, so
  a fresh handshake or an admin request still gets in;
- when ``accept()`` fails for want of descriptors (EMFILE, ENFILE), the oldest
  pending sockets are shed, and the failure is logged at most once per
  ``log_interval`` seconds (with a count) instead of once per attempt.

Use :class:`GuardedSite` in place of ``aiohttp.web.TCPSite`` (``python run.py`` does).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from yarl import URL

from .lingering import abort_at_once

__all__ = ["GuardedSite", "PendingSockets", "release_pending"]

logger = logging.getLogger("lucent_ws.pending")

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
_END_OF_HEADER = b"\r\n\r\n"


class _Pending(asyncio.Protocol):
    """One accepted socket until it upgrades: forwards to aiohttp's protocol, times the header."""

    __slots__ = ("_inner", "_owner", "_tail", "_timer", "header_done", "transport")

    def __init__(self, owner: PendingSockets, inner: asyncio.Protocol) -> None:
        self._owner = owner
        self._inner = inner
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self.header_done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's are not subclasses of asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self._inner.connection_made(transport)
        self._timer = asyncio.get_running_loop().call_later(
            self._owner.header_timeout, self._header_expired
        )
        self._owner._admit(self)

    def data_received(self, data: bytes) -> None:
        if not self.header_done:
            seen = self._tail + data[:4096] if len(data) > 4096 else self._tail + data
            if _END_OF_HEADER in seen or _END_OF_HEADER in data:
                self.header_done = True
                self._cancel_timer()
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._owner._forget(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def release(self) -> None:
        """The socket upgraded: no longer pending; aiohttp's protocol takes over directly."""
        self._cancel_timer()
        self._owner._forget(self)
        if self.transport is not None:
            self.transport.set_protocol(self._inner)

    def abort(self) -> None:
        self._cancel_timer()
        if self.transport is not None:
            abort_at_once(self.transport, self.transport.abort)

    def _header_expired(self) -> None:
        self._timer = None
        if not self.header_done:
            self._owner.header_timeouts += 1
            self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class PendingSockets:
    """The protocol factory wrapper bounding sockets that have not upgraded (see the module)."""

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        header_timeout: float = 5.0,
        max_pending: int = 1024,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if header_timeout <= 0 or max_pending <= 0:
            from .errors import ConfigurationError

            raise ConfigurationError("header_timeout and max_pending must be positive")
        self._factory = factory
        self.header_timeout = header_timeout
        self.max_pending = max_pending
        self.log_interval = log_interval
        self._clock = clock
        self._pending: OrderedDict[_Pending, None] = OrderedDict()
        self.header_timeouts = 0
        """Sockets aborted for not sending a request header in time."""
        self.shed = 0
        """Pending sockets aborted to make room (cap reached or descriptors exhausted)."""
        self.accept_failures = 0
        """``accept()`` calls that failed for want of descriptors."""
        self._last_log = -float("inf")
        self._unlogged = 0

    def __call__(self) -> asyncio.Protocol:
        return _Pending(self, self._factory())

    def __len__(self) -> int:
        return len(self._pending)

    def _admit(self, socket: _Pending) -> None:
        pending = self._pending
        pending[socket] = None
        while len(pending) > self.max_pending:
            self._shed_oldest()

    def _forget(self, socket: _Pending) -> None:
        self._pending.pop(socket, None)

    def _shed_oldest(self) -> None:
        oldest, _ = self._pending.popitem(last=False)
        self.shed += 1
        oldest.abort()

    def out_of_descriptors(self, exc: OSError) -> None:
        """``accept()`` failed with EMFILE/ENFILE: free descriptors, log once per interval."""
        self.accept_failures += 1
        # Enough for a full listen backlog (accept() retries after a second).
        for _ in range(max(128, len(self._pending) // 4)):
            if not self._pending:
                break
            self._shed_oldest()
        now = self._clock()
        if now - self._last_log < self.log_interval:
            self._unlogged += 1
            return
        logger.warning(
            "out of file descriptors (%s): %d more accept failures since the last report; "
            "%d pending sockets left, %d shed so far",
            errno.errorcode.get(exc.errno or 0, exc.errno),
            self._unlogged,
            len(self._pending),
            self.shed,
        )
        self._last_log = now
        self._unlogged = 0

    def exception_handler(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
        """A loop exception handler: descriptor exhaustion here, the rest to ``previous``."""

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
                self.out_of_descriptors(exc)
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        return handle


def release_pending(transport: object) -> None:
    """Tell the server that this socket upgraded: it stops counting as pending.

    A no-op for sockets not accepted through :class:`PendingSockets`.
    """
    get_protocol = getattr(transport, "get_protocol", None)
    protocol = get_protocol() if get_protocol is not None else None
    if isinstance(protocol, _Pending):
        protocol.release()


class GuardedSite(web.BaseSite):
    """A TCP site like ``aiohttp.web.TCPSite`` whose sockets pass through :class:`PendingSockets`.

    Also installs the loop exception handler that turns descriptor exhaustion
    into shedding and one log line per interval.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        header_timeout: float = 5.0,
        max_pending: int = 1024,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._reuse_port = reuse_port
        self._host = host
        self._port = port
        self._header_timeout = header_timeout
        self._max_pending = max_pending
        self.pending: PendingSockets | None = None

    @property
    def name(self) -> str:
        """The URL the site listens on."""
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        """Listen; every accepted socket is pending until it upgrades."""
        await super().start()
        server = self._runner.server
        assert server is not None
        pending = self.pending = PendingSockets(
            server, header_timeout=self._header_timeout, max_pending=self._max_pending
        )
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(pending.exception_handler(loop.get_exception_handler()))
        self._server = await loop.create_server(
            pending,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )
