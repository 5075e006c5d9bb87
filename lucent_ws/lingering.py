"""What happens to an upgraded socket below aiohttp: masking, lingering close, abort.

Closing a TCP socket that still has unread data makes the kernel answer with a
reset, and the peer's kernel then throws away what it had received but not yet
read: a client flooding the hub would lose its error replies and the close
frame, and see 1006. :class:`SocketGuard` sits between the transport and
aiohttp's protocol once a socket is upgraded and makes every close a lingering
close (RFC 6455 section 7, nginx's ``lingering_close``): after the server's close
frame, whatever the peer still sends is read and discarded until its close
frame, EOF or the linger timeout; only then is the socket closed (at the
timeout: aborted if the close frame is still unsent, else closed plainly, so a
peer that was merely slow still finds the close frame before the FIN). A close
that answers the client's own close frame is immediate.
The client's close frame is found by walking every frame header, never by
looking for its bytes: a masked payload holds every byte pattern sooner or
later, and a close on such a lookalike is a reset with the flood unread.
:meth:`SocketGuard.wait_closed` tells whoever must outlive the linger (the
shutdown) when the socket is really closed.
Whoever closes (aiohttp after a close handshake or a parse error, the manager
evicting, the shutdown) goes through ``transport.close()``, which the guard
takes over for that one transport.

It also walks the frame headers of everything the client sends (a few
operations per frame) to enforce RFC 6455 section 5.1: a client frame that is
not masked ends the connection with 1002. And an abort sets ``SO_LINGER`` to
zero first, so the kernel drops unsent data at once instead of holding it in
FIN-WAIT-1 for minutes.

Event loops whose transports do not accept the override (uvloop's are C types)
keep aiohttp's plain close; see :func:`guard_socket`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

__all__ = ["SocketGuard", "abort_at_once", "guard_socket"]

logger = logging.getLogger("lucent_ws.lingering")

_OP_CLOSE: Final = 0x8
_NO_LINGER: Final = struct.pack("ii", 1, 0)


def abort_at_once(transport: asyncio.BaseTransport, abort: Callable[[], None]) -> None:
    """Abort with ``SO_LINGER`` 0: the kernel resets the connection and frees its buffers."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
    abort()


class SocketGuard(asyncio.Protocol):
    """The protocol between an upgraded socket's transport and aiohttp's own protocol."""

    def __init__(
        self,
        transport: asyncio.Transport,
        inner: asyncio.Protocol,
        *,
        linger: float,
        on_unmasked: Callable[[], object],
    ) -> None:
        self._transport = transport
        self._inner = inner
        self._linger = linger
        self._on_unmasked = on_unmasked
        self._close = transport.close
        self._abort = transport.abort
        self._is_closing = transport.is_closing
        self._head = b""  # an incomplete frame header carried over from the last read
        self._skip = 0  # payload bytes of the current frame still to come
        self._dropping = False  # a protocol violation was seen: nothing more goes to aiohttp
        self._lingering = False
        self._peer_eof = False
        self.peer_closed = False
        """True once the client's close frame header was read (it sends nothing after it)."""
        self._timer: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[None] | None = None
        self.discarded = 0
        """Bytes read and thrown away while lingering (or after a violation)."""

    # --- the transport methods taken over --------------------------------------------

    def close(self) -> None:
        """Close now if the client's whole close frame was read, else linger (module doc)."""
        if self._lingering or self._is_closing():
            return
        if self._peer_eof or self._peer_close_read():
            self._close()  # the close handshake is over: the server closes TCP first
            return
        self._lingering = True
        self._transport.resume_reading()  # aiohttp may have paused it: drain to the end
        self._timer = asyncio.get_running_loop().call_later(self._linger, self._linger_expired)

    def abort(self) -> None:
        """Abort with ``SO_LINGER`` 0, unless lingering with nothing left to send."""
        self._cancel_timer()
        if self._lingering and not self._transport.get_write_buffer_size():
            # The close frame went out and what the peer sent was read: a plain close
            # ends with a FIN after the close frame, where a reset would make the
            # peer's kernel drop the close frame if the peer has not read it yet.
            self._close()
            return
        abort_at_once(self._transport, self._abort)

    def is_closing(self) -> bool:
        """True once closing began, lingering included: nothing more may be written."""
        return self._lingering or self._is_closing()

    async def wait_closed(self) -> None:
        """Return once the socket is closed: the lingering close over, or aborted."""
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._lost)

    def _linger_expired(self) -> None:
        self._timer = None
        # The peer did not answer in time: close plainly if all was sent, else abort.
        self.abort()

    def _finish(self) -> None:
        self._cancel_timer()
        self._close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- asyncio.Protocol ----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Forward to aiohttp what it may see; discard the rest."""
        if self._lingering:
            self.discarded += len(data)
            self._scan(data)
            if self._peer_close_read():
                self._finish()  # the peer's whole close frame: it sends nothing after it
            return
        if self._dropping:
            self.discarded += len(data)
            self._scan(data)
            return
        bad = self._scan(data)
        if bad < 0:
            self._inner.data_received(data)
            return
        if bad:
            self._inner.data_received(data[:bad])
        self.discarded += len(data) - bad
        self._dropping = True
        self._on_unmasked()

    def eof_received(self) -> bool | None:
        """The peer shut down its side: done lingering, or aiohttp learns of it."""
        self._peer_eof = True
        if self._lingering:
            self._finish()
            return True
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Hand the end of the connection to aiohttp."""
        self._cancel_timer()
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        if not self._lost.done():
            self._lost.set_result(None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Forward flow control to aiohttp."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Forward flow control to aiohttp."""
        self._inner.resume_writing()

    # --- frame headers -----------------------------------------------------------------

    def _peer_close_read(self) -> bool:
        """True once the peer's close frame was read to its last byte (and nothing after)."""
        return self.peer_closed and not self._skip and not self._head

    def _scan(self, data: bytes) -> int:
        """Walk the frame headers in ``data``, keeping track of every frame boundary.

        Returns the offset of the first unmasked frame (client frames are always
        masked), or -1. An unmasked frame is walked like any other, so the
        boundaries stay known after a violation too. Notes a close frame in
        :attr:`peer_closed`.
        """
        skip = self._skip
        if skip >= len(data):
            self._skip = skip - len(data)
            return -1
        self._skip = 0
        kept = len(self._head)
        if kept:  # a header cut by the end of the last read (at most 13 bytes)
            data = self._head + data
            self._head = b""
            pos = 0
        else:
            pos = skip
        size = len(data)
        bad = -1
        # Runs once per frame: a few operations only, a flood is many frames.
        while pos < size:
            if pos + 14 > size and not _header_complete(data, pos):
                self._head = data[pos:]
                return bad
            second = data[pos + 1]
            if second < 0x80:
                if bad < 0:
                    bad = max(pos - kept, 0)
                header = 2
            else:
                header = 6
            if data[pos] & 0x0F == _OP_CLOSE:
                self.peer_closed = True
            length = second & 0x7F
            if length < 126:
                pos += header + length
            elif length == 126:
                pos += header + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
            else:
                pos += header + 8 + int.from_bytes(data[pos + 2 : pos + 10], "big")
        self._skip = pos - size
        return bad


def _header_complete(data: bytes, pos: int) -> bool:
    """True if ``data`` holds the whole frame header at ``pos`` (mask key included)."""
    available = len(data) - pos
    if available < 2:
        return False
    second = data[pos + 1]
    length = second & 0x7F
    needed = (6 if second >= 0x80 else 2) + (2 if length == 126 else 8 if length == 127 else 0)
    return available >= needed


def guard_socket(
    transport: Any, *, linger: float, on_unmasked: Callable[[], object]
) -> SocketGuard | None:
    """Put a :class:`SocketGuard` under an upgraded socket; None where the loop forbids it."""
    if not isinstance(transport, asyncio.Transport) or transport.is_closing():
        return None
    guard = SocketGuard(transport, transport.get_protocol(), linger=linger, on_unmasked=on_unmasked)  # type: ignore[arg-type]
    try:
        transport.close = guard.close  # type: ignore[method-assign]
        transport.abort = guard.abort  # type: ignore[method-assign]
        transport.is_closing = guard.is_closing  # type: ignore[method-assign]
    except (AttributeError, TypeError):
        logger.debug("this event loop's transports cannot linger; closing plainly")
        return None
    transport.set_protocol(guard)
    return guard
