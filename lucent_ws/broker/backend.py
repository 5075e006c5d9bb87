"""The storage seam: what a backend (Redis, or the in-process one) must provide.

A backend offers four things, each a plain key/value or pub/sub primitive, and
knows nothing about rooms or connections:

- a **bus**: publish opaque messages that every node (the publisher included)
  receives in the order each publisher sent them;
- per node, a **membership hash** of opaque fields (written as deltas, read as a
  whole), plus its sequence number;
- per node, a **lease**: a small value that expires after a time-to-live unless
  renewed;
- a **set of node ids**;
- per history room, a **stream** (:meth:`Backend.append`, :meth:`Backend.read`):
  the backend assigns offsets and the epoch, keeps the newest entries, and
  publishes each append on the bus in the same atomic step, so every node
  sees a room's messages in one order (see :mod:`lucent_ws.broker.history`).

:class:`~lucent_ws.broker.replication.Broker` builds cluster membership,
delivery and failure handling on top of it. Backend methods raise on failure
(any exception); the broker then reconnects with backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = [
    "Appended",
    "Backend",
    "HistoryAppend",
    "NodeState",
    "StreamEntry",
    "StreamRead",
    "Writes",
]


@dataclass(slots=True)
class Writes:
    """One round trip to the backend, applied in this order.

    1. ``forget``: drop the node's lease, membership hash and set entry;
    2. ``replace``: empty the node's membership hash;
    3. delete ``del_fields``, then set ``set_fields`` and ``seq`` in the hash;
    4. ``lease``: set the node's lease to this value for ``lease_ttl`` seconds,
       and add the node to the set of nodes;
    5. publish ``messages`` on the bus, in order.

    With ``atomic`` no other client may observe a part of it.
    """

    node: str
    forget: bool = False
    replace: bool = False
    del_fields: list[str] = field(default_factory=list)
    set_fields: dict[str, bytes] = field(default_factory=dict)
    seq: int | None = None
    lease: bytes | None = None
    lease_ttl: float = 0.0
    messages: list[bytes] = field(default_factory=list)
    atomic: bool = False


class NodeState(NamedTuple):
    """A node as stored: what remains of its lease, its lease value, its hash."""

    ttl: float
    lease: bytes
    seq: int
    fields: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class HistoryAppend:
    """One message for a history room's stream, and the bus frame that announces it.

    The bus frame is ``bus_prefix + ',"o":OFFSET,"e":"EPOCH"' + bus_suffix``
    (:func:`lucent_ws.broker.wire.room_frame_parts`), completed by the backend
    once it has assigned the offset. ``fresh_epoch`` becomes the room's epoch if
    the room has no position (new, expired, or lost by the backend): offsets
    then start again at 1 in that epoch, never reused in an old one.
    """

    room: str
    payload: bytes
    sender: str | None
    exclude: tuple[str, ...]
    publish_id: str | None
    size: int
    """Entries to keep (``history_size``; trimmed approximately)."""
    ttl: float
    """Seconds the room's keys live after its last append (``history_ttl``)."""
    fresh_epoch: str
    bus_prefix: bytes
    bus_suffix: bytes


class Appended(NamedTuple):
    """The offset an append got (or, ``duplicate``: the original's), and the epoch."""

    offset: int
    epoch: str
    duplicate: bool


class StreamEntry(NamedTuple):
    """A kept message of a history room, as appended."""

    offset: int
    payload: bytes
    sender: str | None
    exclude: tuple[str, ...]
    publish_id: str | None


class StreamRead(NamedTuple):
    """A room's epoch and top offset, and kept entries, read at one instant."""

    epoch: str
    top: int
    entries: list[StreamEntry]


class Backend(Protocol):
    """Key/value and pub/sub primitives for :class:`~lucent_ws.broker.Broker`."""

    @property
    def name(self) -> str:
        """Where it connects, for logs (never with credentials)."""

    async def connect(self) -> None:
        """Connect and subscribe to the bus; raise if unreachable."""

    async def close(self) -> None:
        """Disconnect (never raises)."""

    def messages(self) -> AsyncIterator[bytes]:
        """The bus messages as they arrive; raises when the connection is lost."""

    async def write(self, writes: Writes) -> None:
        """Apply one :class:`Writes`."""

    async def renew(self, node: str, lease: bytes, ttl: float) -> bool:
        """Renew a node's lease (and its set entry); False if the lease had lapsed."""

    async def node_ids(self) -> set[str]:
        """The ids in the set of nodes."""

    async def read_node(self, node: str) -> NodeState | None:
        """A node's lease and hash, read at one instant; None if its lease is gone."""

    async def append(self, request: HistoryAppend) -> Appended:
        """Atomically: assign the room's next offset, keep the entry, set the TTLs, publish.

        A ``publish_id`` the room already holds appends and publishes nothing
        and answers the original offset with ``duplicate=True``.
        """

    async def read(
        self, room: str, after: int, count: int, fresh_epoch: str, ttl: float
    ) -> StreamRead:
        """The room's position and at most ``count`` entries after ``after``, oldest first.

        A room without a position gets one (``fresh_epoch``, top 0, ``ttl``).
        """
