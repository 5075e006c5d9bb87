"""Per-room message history: offsets, epochs and bounded rings (pure: no I/O, no aiohttp).

A :class:`HistoryStore` keeps, for every room whose policy has ``history_size``,
the room's recent encoded messages so that a client that reconnects can be sent
what it missed. Guarantees:

- **Offsets.** A room's messages get offsets 1, 2, 3, ... with no gap, within an
  *epoch* (a random string). An offset is never given twice within an epoch. A
  room's epoch changes only when its stream is created afresh: the room is new
  to this store, it was forgotten (nothing published for ``history_ttl``), or
  :meth:`HistoryStore.apply` received another epoch. A new epoch restarts at 1
  (or at the offset ``apply`` was given).
- **Bounds.** A room keeps at most ``history_size`` entries, each for at most
  ``history_ttl`` seconds (the store's clock). The whole store keeps at most
  ``max_bytes`` *charged* bytes, so that the cap bounds memory, not just payloads:
  each entry is charged its message length plus :data:`ENTRY_OVERHEAD` (plus
  ``len(id) +`` :data:`ID_OVERHEAD` with a publish id), each known room
  :data:`ROOM_OVERHEAD`. Over the cap, the oldest entries of the whole store go
  first, whatever their room. Rooms themselves are not evicted (that would change
  their epoch under their clients): a store whose known rooms alone are charged
  more than ``max_bytes`` (over ``max_bytes / ROOM_OVERHEAD`` rooms used within
  their TTL) holds no entry and stays over its cap until they are forgotten.
  An entry larger than the cap gets its offset and is evicted at once.
- **Forgetting.** A room whose last message (or, without one, its position's
  creation) is ``history_ttl`` old holds no entry and is forgotten entirely:
  nothing of it is left. The next message starts a new epoch.
- **Idempotence.** An append with a publish id already held by one of the room's
  kept entries stores nothing and answers that entry's offset with
  ``duplicate=True``. The window is the ring: an id is known while its entry is.
- **Cost.** An append is O(1) amortized: no scan per append. Expiry runs through
  a heap of one deadline per room, checked in O(1) when nothing is due and
  O(log rooms) per room whose oldest entries expire; the byte cap through one FIFO
  of the whole store, compacted when half of it is stale.

Every public method first drops what has expired, so what it answers is exact.
Offsets and bounds are this node's; with a broker, offsets come from the shared
stream and reach the store through :meth:`HistoryStore.apply`.
"""

from __future__ import annotations

import heapq
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from .errors import ConfigurationError
from .policy import RoomPolicy
from .recovery import RecoveryReason, RecoveryResult
from .ring import (
    ENTRY_OVERHEAD,
    ID_OVERHEAD,
    ROOM_OVERHEAD,
    AppendResult,
    ApplyResult,
    ApplyStatus,
    Entry,
    HistoryStats,
    Position,
    Ring,
)

__all__ = [
    "DEFAULT_HISTORY_MAX_BYTES",
    "ENTRY_OVERHEAD",
    "ID_OVERHEAD",
    "ROOM_OVERHEAD",
    "AppendResult",
    "ApplyResult",
    "ApplyStatus",
    "Entry",
    "HistoryStats",
    "HistoryStore",
    "Position",
    "new_epoch",
]

DEFAULT_HISTORY_MAX_BYTES: Final = 64 * 1024 * 1024
"""The node-wide history byte cap (``--history-max-bytes``)."""


def new_epoch() -> str:
    """A fresh random epoch (hex, so it goes into a bus header as is)."""
    return secrets.token_hex(8)


class HistoryStore:
    """The history of every room of this node, under one byte cap (see the module docs)."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_HISTORY_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.monotonic,
        new_epoch: Callable[[], str] = new_epoch,
    ) -> None:
        if max_bytes <= 0:
            raise ConfigurationError("history max_bytes must be positive")
        self.max_bytes = max_bytes
        self._clock = clock
        self._new_epoch = new_epoch
        self._rooms: dict[str, Ring] = {}
        self._fifo: deque[Ring] = deque()  # one reference per entry, oldest first
        self._due: list[tuple[float, int, Ring]] = []  # heap: one deadline per ring
        self._seq = 0
        self._bytes = 0
        self._charged = 0
        self._entries = 0
        self.evicted = 0
        """Entries dropped for the byte cap since the start."""
        self.expired = 0
        """Entries dropped for their age since the start."""

    # -- reading -------------------------------------------------------------

    def stats(self) -> HistoryStats:
        """The store's figures now."""
        self._expire(self._clock())
        return HistoryStats(
            len(self._rooms),
            self._entries,
            self._bytes,
            self._charged,
            self.max_bytes,
            self.evicted,
            self.expired,
        )

    def __contains__(self, room: object) -> bool:
        self._expire(self._clock())
        return room in self._rooms

    def position(self, room: str, policy: RoomPolicy) -> Position:
        """The room's epoch and top offset; an unknown room starts an epoch at 0."""
        now = self._clock()
        self._expire(now)
        ring = self._ring(room, policy, now)
        return Position(ring.epoch, ring.top)

    def since(
        self, room: str, offset: int = 0, epoch: str | None = None, limit: int | None = None
    ) -> list[Entry]:
        """Kept entries after ``offset``, oldest first, at most ``limit`` (the oldest ones).

        With an ``epoch`` other than the room's, ``offset`` means nothing here and every
        kept entry is answered. An unknown room has none.
        """
        self._expire(self._clock())
        ring = self._rooms.get(room)
        if ring is None:
            return []
        if epoch is not None and epoch != ring.epoch:
            offset = 0
        start = max(ring.head, ring.index_of(offset + 1))
        stop = len(ring.data) if limit is None else min(len(ring.data), start + max(limit, 0))
        return ring.entries(start, stop)

    def latest(self, room: str, limit: int) -> list[Entry]:
        """The room's ``limit`` newest kept entries, oldest first."""
        self._expire(self._clock())
        ring = self._rooms.get(room)
        if ring is None or limit <= 0:
            return []
        return ring.entries(len(ring.data) - limit, len(ring.data))

    def recover(
        self,
        room: str,
        policy: RoomPolicy,
        since_offset: int,
        since_epoch: str,
        max_messages: int,
        max_bytes: int,
    ) -> RecoveryResult:
        """What a client at ``(since_epoch, since_offset)`` missed: all of it, or none.

        ``recovered`` only if the epoch is the room's, every missed entry is kept, there
        are at most ``max_messages`` of them and their messages total at most
        ``max_bytes``; else ``reason`` says which check failed first (in that order)
        and no entry is answered. An unknown room starts a new epoch.
        """
        now = self._clock()
        self._expire(now)
        ring = self._ring(room, policy, now)
        pos = Position(ring.epoch, ring.top)
        if since_epoch != ring.epoch:
            return RecoveryResult.failed(RecoveryReason.EPOCH_CHANGED, 0, pos)
        missed = ring.top - since_offset
        if since_offset < 0 or missed < 0:
            return RecoveryResult.failed(RecoveryReason.AHEAD, 0, pos)
        if since_offset + 1 < ring.first:
            return RecoveryResult.failed(RecoveryReason.TOO_OLD, missed, pos)
        if missed > max_messages:
            return RecoveryResult.failed(RecoveryReason.TOO_MANY, missed, pos)
        start = len(ring.data) - missed
        if sum(len(ring.data[i]) for i in range(start, len(ring.data))) > max_bytes:
            return RecoveryResult.failed(RecoveryReason.TOO_LARGE, missed, pos)
        entries = tuple(ring.entries(start, len(ring.data)))
        return RecoveryResult(True, missed, None, entries, pos)

    # -- writing -------------------------------------------------------------

    def append(
        self, room: str, policy: RoomPolicy, data: bytes, publish_id: str | None = None
    ) -> AppendResult:
        """Give ``data`` the room's next offset and keep it (unless ``publish_id`` is held)."""
        now = self._clock()
        self._expire(now)
        ring = self._ring(room, policy, now)
        if publish_id is not None and ring.ids is not None:
            offset = ring.ids.get(publish_id)
            if offset is not None:
                return AppendResult(offset, ring.epoch, True)
        ring.top += 1
        self._push(ring, data, now, publish_id)
        return AppendResult(ring.top, ring.epoch, False)

    def apply(
        self,
        room: str,
        policy: RoomPolicy,
        offset: int,
        epoch: str,
        data: bytes,
        publish_id: str | None = None,
    ) -> ApplyResult:
        """Keep an entry whose offset and epoch were assigned elsewhere (a shared stream).

        The caller orders epochs: any epoch other than the room's replaces it. A gap
        stores nothing; the caller fills it (applying the missing entries in order)
        or accepts it with :meth:`reset`.
        """
        if offset < 1:
            raise ValueError("offsets start at 1")
        now = self._clock()
        self._expire(now)
        ring = self._current(room, policy, now)
        if ring is None or ring.epoch != epoch:
            status = ApplyStatus.STARTED if ring is None else ApplyStatus.EPOCH_CHANGED
            if ring is not None:
                self._forget(ring)
            ring = self._create(room, policy, now, epoch, offset - 1)
        elif offset <= ring.top:
            return ApplyResult(ApplyStatus.DUPLICATE, Position(ring.epoch, ring.top))
        elif offset > ring.top + 1:
            missing = (ring.top + 1, offset - 1)
            return ApplyResult(ApplyStatus.GAP, Position(ring.epoch, ring.top), missing)
        else:
            status = ApplyStatus.APPLIED
        ring.top = offset
        self._push(ring, data, now, publish_id)
        return ApplyResult(status, Position(ring.epoch, ring.top))

    def reset(self, room: str, policy: RoomPolicy, epoch: str, top: int) -> None:
        """Drop the room's entries and set its position (a gap that cannot be filled).

        A client behind ``top`` then gets ``too_old``, never a replay with a hole.
        """
        now = self._clock()
        self._expire(now)
        ring = self._current(room, policy, now)
        if ring is not None:
            self._forget(ring)
        self._create(room, policy, now, epoch, top)

    def expire(self) -> None:
        """Drop what has expired now (every other method does it first, too)."""
        self._expire(self._clock())

    # -- internals -----------------------------------------------------------

    def _ring(self, room: str, policy: RoomPolicy, now: float) -> Ring:
        ring = self._current(room, policy, now)
        if ring is None:
            return self._create(room, policy, now, self._new_epoch(), 0)
        return ring

    def _current(self, room: str, policy: RoomPolicy, now: float) -> Ring | None:
        """The room's ring under its policy as it is now; None if unknown (or just expired)."""
        if policy.history_size <= 0:
            raise ConfigurationError(f"room {room!r} keeps no history")
        ring = self._rooms.get(room)
        if ring is not None:
            self._adopt(ring, policy, now)
            ring = self._rooms.get(room)  # a shorter TTL may have expired it
        return ring

    def _create(self, room: str, policy: RoomPolicy, now: float, epoch: str, top: int) -> Ring:
        ring = self._rooms[room] = Ring(room, epoch, top, policy, now)
        self._charged += ROOM_OVERHEAD
        self._schedule(ring, now + ring.ttl)
        if self._charged > self.max_bytes:  # a new room makes room like a new entry
            self._evict()
        return ring

    def _adopt(self, ring: Ring, policy: RoomPolicy, now: float) -> None:
        """Follow a changed policy: a smaller ring or a shorter TTL applies at once."""
        if policy.history_ttl != ring.ttl:
            ring.ttl = policy.history_ttl
            first = ring.times[ring.head] if ring.live else ring.last
            self._schedule(ring, first + ring.ttl)
            self._expire(now)
        ring.size = policy.history_size
        while ring.live > ring.size:
            self._drop_head(ring)

    def _schedule(self, ring: Ring, deadline: float) -> None:
        ring.due = deadline
        self._seq += 1
        heapq.heappush(self._due, (deadline, self._seq, ring))

    def _push(self, ring: Ring, data: bytes, now: float, pid: str | None) -> None:
        self._charged += ring.push(data, now, pid)
        self._bytes += len(data)
        self._entries += 1
        ring.tokens += 1
        self._fifo.append(ring)
        while ring.live > ring.size:
            self._drop_head(ring)
        if self._charged > self.max_bytes:
            self._evict()
        self._compact_if_stale()

    def _compact_if_stale(self) -> None:
        if len(self._fifo) > 2 * self._entries + 4096:
            self._compact()

    def _drop_head(self, ring: Ring) -> None:
        size, charged = ring.drop_head()
        self._bytes -= size
        self._charged -= charged
        self._entries -= 1

    def _evict(self) -> None:
        """Drop the store's oldest entries until it is under its cap."""
        fifo = self._fifo
        while self._charged > self.max_bytes and fifo:
            ring = fifo.popleft()
            # The ring's kept entries are its newest pushes: a reference beyond them is stale.
            stale = ring.tokens > ring.live
            ring.tokens -= 1
            if not stale:
                self._drop_head(ring)
                self.evicted += 1

    def _compact(self) -> None:
        """Rebuild the FIFO without its stale references (amortized over the appends)."""
        excess: dict[Ring, int] = {}
        kept: deque[Ring] = deque()
        for ring in self._fifo:
            extra = excess.get(ring)
            if extra is None:
                extra = ring.tokens - ring.live
            if extra > 0:
                excess[ring] = extra - 1
                continue
            excess[ring] = 0
            kept.append(ring)
        for ring in excess:
            ring.tokens = ring.live
        self._fifo = kept

    def _expire(self, now: float) -> None:
        due = self._due
        if not due or due[0][0] > now:
            return
        while due and due[0][0] <= now:
            deadline, _, ring = heapq.heappop(due)
            if ring.due != deadline or self._rooms.get(ring.name) is not ring:
                continue  # superseded by a later deadline, or a ring already gone
            # Deadlines are compared as computed (time + ttl <= now), never as now - ttl:
            # floats rounded the other way would reschedule a due ring forever.
            ttl = ring.ttl
            while ring.live and ring.times[ring.head] + ttl <= now:
                self._drop_head(ring)
                self.expired += 1
            if ring.live:
                self._schedule(ring, ring.times[ring.head] + ttl)
            elif ring.last + ttl <= now:
                self._forget(ring)
            else:
                self._schedule(ring, ring.last + ring.ttl)
        self._compact_if_stale()  # forgotten rooms must not stay alive through the FIFO

    def _forget(self, ring: Ring) -> None:
        """Drop a ring and its entries; its FIFO references and deadline become stale."""
        while ring.live:
            self._drop_head(ring)
        ring.ids = None
        ring.pids = None
        del self._rooms[ring.name]
        self._charged -= ROOM_OVERHEAD
