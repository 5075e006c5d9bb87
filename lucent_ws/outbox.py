"""The outbound path: per-connection frame queues, flushed once per loop tick, with backpressure.

A payload is framed once per broadcast; each recipient gets a reference to the
same frame appended to its pending list, and a loop callback writes each
connection's pending frames with a single ``transport.write``, at most
:data:`FLUSH_SLICE` connections per tick. Nothing awaits a peer. A peer whose
unsent bytes exceed its buffer limit is handed to ``on_overflow`` (the manager
evicts it with 1013).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import Final

from .connection import Connection
from .stats import Counters

__all__ = ["FLUSH_SLICE", "Outbox"]

FLUSH_SLICE: Final = 32
"""Connections written per loop tick; more wait for the next tick.

Small on purpose: between slices the loop reads new messages, and a broadcast read
while a large room is being written joins the frames still pending for the members
not yet written, so more frames share each write.
"""
_NO_LIMIT: Final = 1 << 62


class Outbox:
    """Queues frames for connections and writes them without ever blocking."""

    __slots__ = (
        "_buffer_limits",
        "_counters",
        "_dirty",
        "_flush_handle",
        "_min_buffer",
        "_overflow",
    )

    def __init__(self, counters: Counters, on_overflow: Callable[[Connection], None]) -> None:
        self._counters = counters
        self._overflow = on_overflow
        self._dirty: deque[Connection] = deque()
        self._buffer_limits: dict[int, int] = {}  # outbound limit -> live connections
        self._min_buffer = _NO_LIMIT  # the smallest outbound limit of a live connection
        self._flush_handle: asyncio.Handle | None = None

    @property
    def pending_connections(self) -> int:
        """Connections with frames waiting for a write."""
        return len(self._dirty)

    def open(self, conn: Connection) -> None:
        """Start serving ``conn`` (its buffer limit joins the fan-out's bound)."""
        self._count_limit(conn._max_buffer, 1)

    def close(self, conn: Connection) -> bytes:
        """Stop serving ``conn``; returns what was still queued for it."""
        pending = conn._pending
        data = b"".join(pending)
        pending.clear()
        conn._summed = conn._summed_bytes = 0
        self._count_limit(conn._max_buffer, -1)
        return data

    def _count_limit(self, limit: int, delta: int) -> None:
        limits = self._buffer_limits
        count = limits.get(limit, 0) + delta
        if count:
            limits[limit] = count
        else:
            del limits[limit]
        self._min_buffer = min(limits, default=_NO_LIMIT)

    def send(self, conn: Connection, frame: bytes) -> None:
        """Queue one frame for one connection."""
        pending = conn._pending
        pending.append(frame)
        if len(pending) == 1:
            self._dirty.append(conn)
            self._schedule_flush()
        else:
            self._check_burst(conn)
        counters = self._counters
        counters.messages_out += 1
        counters.bytes_out += len(frame)

    def fanout(
        self, targets: Collection[Connection], frame: bytes, excluded: list[Connection]
    ) -> int:
        """Queue ``frame`` for every target but ``excluded`` (a subset); returns the count."""
        # The hot loop: per recipient one append and one length check; nothing is
        # allocated per recipient unless the frame could overflow the smallest limit.
        # Excluded targets get the frame too and lose it right after the loop, which
        # keeps the membership test out of the loop.
        dirty = self._dirty
        limit = self._min_buffer // len(frame)  # more frames than this may overflow
        suspects: list[Connection] | None = None
        for conn in targets:
            pending = conn._pending
            if not pending:
                dirty.append(conn)
            pending.append(frame)
            if len(pending) > limit:
                suspects = suspects or []
                suspects.append(conn)
        for conn in excluded:
            conn._pending.pop()
        count = len(targets) - len(excluded)
        if suspects:
            for conn in suspects:
                self._check_burst(conn)
        if dirty:
            self._schedule_flush()
        if count:
            counters = self._counters
            counters.messages_out += count
            counters.bytes_out += count * len(frame)
        return count

    def _check_burst(self, conn: Connection) -> None:
        # More queued since the last write than the peer may have outstanding. A single
        # frame is always written; the write buffer's size decides after it. Only the
        # frames added since the previous check are summed.
        pending = conn._pending
        summed = conn._summed if conn._summed <= len(pending) else 0
        total = (conn._summed_bytes if summed else 0) + sum(
            map(len, itertools.islice(pending, summed, None))
        )
        conn._summed, conn._summed_bytes = len(pending), total
        if len(pending) > 1 and not conn.closed and total > conn._max_buffer:
            self._overflow(conn)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # called outside the loop (scripts, unit tests): write now
            return
        self._flush_handle = loop.call_soon(self._flush_tick)

    def flush(self) -> None:
        """Write every connection's pending frames now, one write per connection."""
        dirty = self._dirty
        self._dirty = deque()
        self._write_pending(dirty)

    def _flush_tick(self) -> None:
        # Runs once per loop tick. A slice is bounded so that a broadcast to thousands
        # of connections cannot hold the loop for long; the rest goes out next tick.
        self._flush_handle = None
        dirty = self._dirty
        if len(dirty) > FLUSH_SLICE:
            popleft = dirty.popleft
            batch: Iterable[Connection] = [popleft() for _ in range(FLUSH_SLICE)]
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_tick)
        else:
            batch = dirty
            self._dirty = deque()
        self._write_pending(batch)

    def _write_pending(self, dirty: Iterable[Connection]) -> None:
        for conn in dirty:
            pending = conn._pending
            if not pending or conn.closed:
                continue
            several = len(pending) > 1
            data = b"".join(pending) if several else pending[0]
            pending.clear()
            if conn._summed:
                conn._summed = conn._summed_bytes = 0
            if several and len(data) > conn._max_buffer:
                if not conn._transport.is_closing():
                    self._overflow(conn)  # a burst of frames of several sizes
                continue
            self.write(conn, data)

    def headroom(self, conn: Connection) -> int:
        """Bytes ``conn`` may still be queued before it counts as a slow consumer."""
        queued = sum(map(len, conn._pending))
        if not conn._transport.is_closing():
            queued += conn._transport.get_write_buffer_size()
        return max(0, conn._max_buffer - queued)

    def write(self, conn: Connection, data: bytes) -> None:
        """Write ``data`` to ``conn`` now; hand it to ``on_overflow`` if its buffer is full."""
        transport = conn._transport
        if transport.is_closing():
            return  # the peer is gone; its handler is about to remove it
        try:
            transport.write(data)
        except (OSError, RuntimeError):
            return
        if transport.get_write_buffer_size() > conn._max_buffer:
            self._overflow(conn)
