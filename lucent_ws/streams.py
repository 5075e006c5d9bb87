"""Room histories on this node: offsets on publish, recovery on join, history reads.

The manager composes one :class:`Streams` and consults it only for rooms whose
policy has ``history_size``; rooms without history never reach it. It wraps a
:class:`~lucent_ws.history.HistoryStore` (offsets, epochs, the bounded rings,
the byte cap, idempotent publish ids) and speaks in protocol terms:

- :meth:`Streams.stamp` gives a room message its offset and epoch (or finds
  that its publish id was already published);
- :meth:`Streams.recover` answers a ``join`` with ``since``: all the missed
  messages as replay frames, or none and why;
- :meth:`Streams.page` answers a ``history`` request.

An entry is kept as the head of its v2 envelope,
``{"type":"message","room":R,"from":F,"payload":P`` without its tail, so the
same bytes make a live envelope, a replay (``"replay":true``) or an item of a
history page, for any offset and epoch (with a broker, offsets are assigned
elsewhere and reach the store through ``HistoryStore.apply``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from . import jsoncodec
from .envelope import RoomMessage, envelope_head, frame_body
from .history import DEFAULT_HISTORY_MAX_BYTES, Entry, HistoryStore, Position
from .policy import RoomPolicy
from .recovery import RecoveryResult

__all__ = [
    "DEFAULT_HISTORY_MAX_BYTES",
    "DEFAULT_RECOVER_MAX",
    "HistoryPage",
    "Published",
    "Stamped",
    "Streams",
    "since_of",
]

DEFAULT_RECOVER_MAX: Final = 300
"""Missed messages a recovery replays at most (``--recover-max``)."""
REPLAY_OVERHEAD: Final = 96
"""Bytes a replayed frame adds to its kept head: tail, epoch, WebSocket header (bound)."""


class Published(NamedTuple):
    """What a publish did: recipients, and its position in a room with history.

    ``duplicate``: a publish id already published in the room's window; nothing
    was sent and ``offset`` is the original's.
    """

    delivered: int
    offset: int | None = None
    epoch: str | None = None
    duplicate: bool = False


class Stamped(NamedTuple):
    """A room message with its history position, and whether its id was a repeat."""

    message: RoomMessage
    duplicate: bool


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A room's kept messages (v2 envelopes, oldest first) and its position."""

    room: str
    epoch: str
    offset: int
    """The room's top offset (0: nothing published in this epoch)."""
    messages: list[dict[str, Any]]


def since_of(since: Mapping[str, Any] | Position | tuple[int, str] | None) -> Position | None:
    """A position from ``{"offset": N, "epoch": E}``, a ``Position`` or ``(N, E)``."""
    if since is None:
        return None
    if isinstance(since, Mapping):
        return Position(str(since["epoch"]), int(since["offset"]))
    if isinstance(since, Position):
        return since
    offset, epoch = since
    return Position(epoch, offset)


class Streams:
    """The history of this node's rooms, in protocol terms (see the module docs)."""

    __slots__ = ("recover_max", "store")

    def __init__(
        self,
        max_bytes: int = DEFAULT_HISTORY_MAX_BYTES,
        recover_max: int = DEFAULT_RECOVER_MAX,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = HistoryStore(max_bytes, clock=clock)
        self.recover_max = recover_max
        """Missed messages a recovery replays at most."""

    def stamp(
        self, message: RoomMessage, policy: RoomPolicy, publish_id: str | None = None
    ) -> Stamped:
        """Keep ``message`` under the room's next offset; the message with its position."""
        head = envelope_head(message.room, message.sender, message.payload)
        result = self.store.append(message.room, policy, head, publish_id)
        stamped = RoomMessage(
            message.room, message.payload, message.sender, result.offset, result.epoch
        )
        return Stamped(stamped, result.duplicate)

    def position(self, room: str, policy: RoomPolicy) -> Position:
        """The room's epoch and top offset (an unknown room starts an epoch)."""
        return self.store.position(room, policy)

    def recover(
        self, room: str, policy: RoomPolicy, since: Position, max_bytes: int
    ) -> tuple[RecoveryResult, list[bytes]]:
        """All the messages after ``since`` as replay frame bodies, or none (and why).

        ``max_bytes`` bounds the replay's frames (their heads plus
        :data:`REPLAY_OVERHEAD` each), so that it fits in what the client may queue.
        """
        budget = max(0, max_bytes - self.recover_max * REPLAY_OVERHEAD)
        result = self.store.recover(
            room, policy, since.offset, since.epoch, self.recover_max, budget
        )
        if not result.recovered:
            return result, []
        epoch = jsoncodec.dumps(result.epoch)
        return result, [frame_body(e.data, e.offset, epoch, replay=True) for e in result.entries]

    def page(
        self, room: str, policy: RoomPolicy, since: Position | None, limit: int | None
    ) -> tuple[Position, bytes]:
        """The room's position and its kept messages as one JSON array (bytes).

        With ``since``: the messages after it, oldest first, at most ``limit``
        (the oldest ones); without: the newest ``limit`` (all kept by default).
        """
        position = self.store.position(room, policy)
        entries: list[Entry]
        if since is not None:
            entries = self.store.since(room, since.offset, since.epoch, limit)
        elif limit is not None:
            entries = self.store.latest(room, limit)
        else:
            entries = self.store.since(room)
        epoch = jsoncodec.dumps(position.epoch)
        items = b",".join(frame_body(e.data, e.offset, epoch) for e in entries)
        return position, b"[" + items + b"]"

    def history_page(
        self, room: str, policy: RoomPolicy, since: Position | None, limit: int | None
    ) -> HistoryPage:
        """:meth:`page` decoded, for Python callers and the admin API."""
        position, messages = self.page(room, policy, since, limit)
        return HistoryPage(room, position.epoch, position.offset, jsoncodec.loads(messages))
