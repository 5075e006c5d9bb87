"""One room's kept history entries, and the values the history answers (pure).

:class:`Ring` is the per-room part of :class:`lucent_ws.history.HistoryStore`:
the room's epoch, its top offset and its kept entries, oldest first. Offsets are
contiguous, so none is stored: the newest entry has ``top``, the one before it
``top - 1``, and so on. An entry costs a list slot for its bytes, 8 bytes of a
float array for its time and, once the room has seen a publish id, a list slot
for the id. Dropping the oldest entry is O(1) amortized (a head index; the lists
are compacted once half of them is dropped slots).
"""

from __future__ import annotations

from array import array
from enum import StrEnum
from typing import Final, NamedTuple

from .policy import RoomPolicy

__all__ = [
    "ENTRY_OVERHEAD",
    "ID_OVERHEAD",
    "ROOM_OVERHEAD",
    "AppendResult",
    "ApplyResult",
    "ApplyStatus",
    "Entry",
    "HistoryStats",
    "Position",
    "Ring",
]

ENTRY_OVERHEAD: Final = 64
"""Bytes charged per entry besides its message: the bytes header (33), three slots (24)."""
ID_OVERHEAD: Final = 128
"""Bytes charged per publish id besides its length: the str header (49) and its dict slot."""
ROOM_OVERHEAD: Final = 640
"""Bytes charged per known room: its record, lists, epoch, name and deadline (measured)."""
_COMPACT_AT: Final = 8
"""The lists are compacted once this many dropped slots make up half of them."""


class Entry(NamedTuple):
    """A kept message: its offset, encoded bytes, store-clock time and publish id."""

    offset: int
    data: bytes
    time: float
    publish_id: str | None = None


class Position(NamedTuple):
    """A room's epoch and top offset (0: nothing published in this epoch yet)."""

    epoch: str
    offset: int


class AppendResult(NamedTuple):
    """The offset an append got (or found: ``duplicate``), and its epoch."""

    offset: int
    epoch: str
    duplicate: bool


class ApplyStatus(StrEnum):
    """What :meth:`~lucent_ws.history.HistoryStore.apply` did with an entry assigned elsewhere."""

    APPLIED = "applied"
    """The next offset of the room's epoch: stored."""
    STARTED = "started"
    """The room was unknown here: stored, the room now follows that epoch."""
    EPOCH_CHANGED = "epoch_changed"
    """Another epoch: the old entries were dropped, the entry stored."""
    DUPLICATE = "duplicate"
    """An offset at or below the top: already had, nothing stored."""
    GAP = "gap"
    """Offsets are missing before it: nothing stored (fill ``missing`` first, or ``reset``)."""


class ApplyResult(NamedTuple):
    """What ``HistoryStore.apply`` did; ``missing``: the gap (first, last offset)."""

    status: ApplyStatus
    position: Position
    missing: tuple[int, int] | None = None


class HistoryStats(NamedTuple):
    """A history store's figures: what it keeps, what it charges, what it dropped."""

    rooms: int
    entries: int
    bytes: int
    """Message bytes kept."""
    charged: int
    """Bytes charged against ``max_bytes``."""
    max_bytes: int
    evicted: int
    """Entries dropped for the byte cap since the start."""
    expired: int
    """Entries dropped for their age since the start."""


class Ring:
    """One room's entries: parallel lists from ``head``, offsets ending at ``top``.

    The store owns the accounting: :meth:`push` and :meth:`drop_head` answer the
    bytes they add or free. ``tokens`` and ``due`` are the store's bookkeeping
    (references in its FIFO, the deadline in its heap).
    """

    __slots__ = (
        "data",
        "due",
        "epoch",
        "head",
        "ids",
        "last",
        "name",
        "pids",
        "size",
        "times",
        "tokens",
        "top",
        "ttl",
    )

    def __init__(self, name: str, epoch: str, top: int, policy: RoomPolicy, now: float) -> None:
        self.name = name
        self.epoch = epoch
        self.top = top
        self.head = 0
        self.data: list[bytes] = []
        self.times = array("d")
        self.pids: list[str | None] | None = None  # created with the first publish id
        self.ids: dict[str, int] | None = None  # publish id -> offset, for kept entries
        self.size = policy.history_size
        self.ttl = policy.history_ttl
        self.last = now
        self.due = 0.0
        self.tokens = 0

    @property
    def live(self) -> int:
        """Entries kept."""
        return len(self.data) - self.head

    @property
    def first(self) -> int:
        """The oldest kept offset (``top + 1`` when none is kept)."""
        return self.top - self.live + 1

    def offset_at(self, index: int) -> int:
        """The offset of the entry at list ``index``."""
        return self.top - (len(self.data) - 1 - index)

    def index_of(self, offset: int) -> int:
        """The list index ``offset`` has (or would have): clamp it to ``head`` before use."""
        return len(self.data) - 1 - (self.top - offset)

    def entry(self, index: int) -> Entry:
        """The entry at list ``index``."""
        pid = self.pids[index] if self.pids is not None else None
        return Entry(self.offset_at(index), self.data[index], self.times[index], pid)

    def entries(self, start: int, stop: int) -> list[Entry]:
        """The entries at list indexes ``start`` (at least ``head``) to ``stop``."""
        return [self.entry(i) for i in range(max(start, self.head), stop)]

    def push(self, data: bytes, now: float, pid: str | None) -> int:
        """Keep ``data`` as offset ``top`` (set by the caller); the bytes charged."""
        self.data.append(data)
        self.times.append(now)
        self.last = now
        if pid is None and self.pids is None:
            return len(data) + ENTRY_OVERHEAD
        if self.pids is None:
            self.pids = [None] * (len(self.data) - 1)
        self.pids.append(pid)
        if pid is None:
            return len(data) + ENTRY_OVERHEAD
        if self.ids is None:
            self.ids = {}
        self.ids[pid] = self.top
        return len(data) + ENTRY_OVERHEAD + len(pid) + ID_OVERHEAD

    def drop_head(self) -> tuple[int, int]:
        """Drop the oldest kept entry; its message bytes and charged bytes."""
        i = self.head
        data = self.data[i]
        self.data[i] = b""
        size = len(data)
        charged = size + ENTRY_OVERHEAD
        if self.pids is not None:
            pid = self.pids[i]
            if pid is not None:
                self.pids[i] = None
                charged += len(pid) + ID_OVERHEAD
                if self.ids is not None and self.ids.get(pid) == self.offset_at(i):
                    del self.ids[pid]
        self.head = i + 1
        if self.head == len(self.data):
            self.data.clear()
            del self.times[:]
            if self.pids is not None:
                self.pids.clear()
            self.head = 0
        elif self.head >= _COMPACT_AT and 2 * self.head >= len(self.data):
            del self.data[: self.head]
            del self.times[: self.head]
            if self.pids is not None:
                del self.pids[: self.head]
            self.head = 0
        return size, charged
