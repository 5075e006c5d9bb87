"""Merging a replay with live messages by offset, for one connection (pure).

When a client joins a history room with ``since``, the server sends the missed
entries (the replay) while the room's live messages keep arriving. A
:class:`ReplayMerger` sits between both and the client::

    merger = ReplayMerger(since_offset)      # before subscribing to live messages
    send(merger.on_live(offset, frame))      # each live message, from now on
    send(merger.replay(entries))             # the replay, in one call or in pages
    send(merger.finish())                    # the replay is complete: live flows

Guarantee: what the calls return, sent in call order, holds each offset above
``since`` at most once, in increasing order, with no gap. Live messages that
arrive during the replay are held; an offset the client already has (at or
below the last one sent) is dropped; one that arrives ahead of a missing offset
is held until the missing one comes. A hole nobody fills shows as :attr:`gap`:
the caller fetches it (``replay`` again) or gives up with :meth:`skip_gap`
(after telling the client to resync). Held bytes may be bounded
(``max_held_bytes``): past it the merger holds nothing more and sets
:attr:`overflowed`, and the caller must resync the client.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["ReplayMerger"]


class ReplayMerger:
    """One connection's replay-then-live merge for one room, by offset."""

    __slots__ = (
        "_heap",
        "_held",
        "_last",
        "_replaying",
        "delivered",
        "dropped",
        "held_bytes",
        "max_held_bytes",
        "overflowed",
    )

    def __init__(self, since: int, *, max_held_bytes: int = 0) -> None:
        self._last = since
        self._replaying = True
        self._held: dict[int, bytes] = {}
        self._heap: list[int] = []
        self.held_bytes = 0
        """Bytes of the messages held now."""
        self.max_held_bytes = max_held_bytes
        """Held bytes at most (0: no bound)."""
        self.overflowed = False
        """The bound was passed: the merger holds nothing more; resync the client."""
        self.delivered = 0
        """Messages returned for sending."""
        self.dropped = 0
        """Messages dropped as already sent (or offered twice)."""

    @property
    def last(self) -> int:
        """The last offset returned for sending (``since`` before any)."""
        return self._last

    @property
    def replaying(self) -> bool:
        """True until :meth:`finish`."""
        return self._replaying

    @property
    def held(self) -> int:
        """Messages held now."""
        return len(self._held)

    @property
    def gap(self) -> tuple[int, int] | None:
        """The missing offsets (first, last) before a held one, if any, after the replay."""
        if self._replaying or not self._heap:
            return None
        first = self._heap[0]
        return (self._last + 1, first - 1) if first > self._last + 1 else None

    def replay(self, entries: Iterable[tuple[int, bytes]]) -> list[bytes]:
        """Offer replayed ``(offset, data)`` pairs (``Entry`` works); the data to send now."""
        out: list[bytes] = []
        for entry in entries:
            offset, data = entry[0], entry[1]
            if offset == self._last + 1:
                out.append(data)
                self._last = offset
            elif offset <= self._last:
                self.dropped += 1
            else:
                self._hold(offset, data)
        self._drain(out)
        self.delivered += len(out)
        return out

    def on_live(self, offset: int, data: bytes) -> list[bytes]:
        """Offer a live message; the data to send now (none while replaying)."""
        if offset <= self._last:
            self.dropped += 1
            return []
        if self._replaying or offset != self._last + 1:
            self._hold(offset, data)
            return []
        out = [data]
        self._last = offset
        self._drain(out)
        self.delivered += len(out)
        return out

    def finish(self) -> list[bytes]:
        """The replay is complete: the held messages that now follow, in order."""
        self._replaying = False
        out: list[bytes] = []
        self._drain(out)
        self.delivered += len(out)
        return out

    def skip_gap(self) -> list[bytes]:
        """Give up on the :attr:`gap`: jump over it and send what is held after it."""
        gap = self.gap
        if gap is None:
            return []
        self._last = gap[1]
        return self.finish()

    def _hold(self, offset: int, data: bytes) -> None:
        if offset in self._held:
            self.dropped += 1
            return
        if self.overflowed:
            return
        if self.max_held_bytes and self.held_bytes + len(data) > self.max_held_bytes:
            self.overflowed = True
            return
        self._held[offset] = data
        self.held_bytes += len(data)
        heapq.heappush(self._heap, offset)

    def _drain(self, out: list[bytes]) -> None:
        """Append the held messages that follow the last one sent; drop those behind it."""
        heap, held = self._heap, self._held
        while heap and heap[0] <= self._last + 1:
            offset = heapq.heappop(heap)
            data = held.pop(offset)
            self.held_bytes -= len(data)
            if offset == self._last + 1:
                out.append(data)
                self._last = offset
            else:
                self.dropped += 1
