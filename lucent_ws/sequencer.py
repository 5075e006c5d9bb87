"""One order for a history room's messages on every node (pure: no I/O).

With a broker, a history room's offsets and epoch are assigned by the backend
and every node, the publisher included, delivers the room's messages from the
bus. Bus messages can be lost (a node's subscription dropped for a moment) and
the backend can lose its data (a new epoch). A :class:`Sequencer` keeps, per
room, the epoch and the last offset this node delivered, and turns each message
into :class:`Step` actions, in the order they must be carried out:

- the next offset: deliver it (and whatever held message follows);
- an offset at or below the last one: drop it (a repeat);
- an offset ahead of the next one: hold it and ask for the missing ones
  (:attr:`Step.fill`); :meth:`Sequencer.filled` takes what the backend's
  stream still had: delivered in order, and what it no longer has becomes one
  :class:`Resync` (``gap``) after which delivery continues;
- another epoch: one :class:`Resync` (``epoch_changed``) at the new epoch's
  start, then its messages in order (those the node missed read back from the
  stream; only the newest ``max_fill`` of them when there are more).

The caller performs the actions: deliveries to the room's local members, and a
``resync`` message to its local v2 members. What a resync tells a client: its
state of the room must be refetched, and the messages that follow continue from
``offset``.

Every node sees every history room's messages, so a room is followed from its
first message on; :meth:`Sequencer.sweep` forgets the rooms without local
members that went quiet, so what is kept is bounded by the rooms in use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from .envelope import RoomMessage
from .ring import Position

__all__ = ["EPOCH_CHANGED", "GAP", "Delivery", "Resync", "RoomSequence", "Sequencer", "Step"]

EPOCH_CHANGED: Final = "epoch_changed"
"""The room's stream was created afresh (the backend lost its data, or it expired)."""
GAP: Final = "gap"
"""Messages were lost on the way and the stream no longer keeps them."""

_RETIRED_KEPT: Final = 4


class Delivery(NamedTuple):
    """A message to deliver to the room's local members but ``exclude``."""

    message: RoomMessage
    exclude: frozenset[str]


class Resync(NamedTuple):
    """Tell the room's local v2 members to refetch: the room continues after this position."""

    room: str
    reason: str
    epoch: str
    offset: int


class Step(NamedTuple):
    """What to do now: ``actions`` in order; then, with ``fill``, read those offsets."""

    actions: list[Delivery | Resync]
    fill: tuple[int, int] | None = None


@dataclass(slots=True)
class RoomSequence:
    """One room on this node: its epoch, the last offset delivered, the messages held."""

    epoch: str
    last: int
    held: dict[int, Delivery] = field(default_factory=dict)
    filling: bool = False
    target: int = 0
    """The highest offset the current fill must account for."""
    recheck: int = 0
    """A top the backend reported while a fill was in flight, to catch up with after it."""
    generation: int = 0
    """Bumped on each reset, so that a fill begun before it is ignored."""
    retired: list[str] = field(default_factory=list)
    """Epochs this room left: their late messages are dropped, never a way back."""
    touched: float = 0.0
    """When the room last had a message, a read or a join (the sequencer's clock)."""


_NOTHING: Final = Step([])


class Sequencer:
    """The delivery order of every history room this node has seen (see the module docs).

    ``max_fill``: a gap of more offsets than this is not read back; it is a
    resync at once. ``clock`` (seconds) dates each room's last activity for
    :meth:`sweep`.
    """

    def __init__(self, max_fill: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_fill = max_fill
        self._clock = clock
        self.rooms: dict[str, RoomSequence] = {}
        self.dropped = 0
        """Messages dropped as repeats or as late messages of a retired epoch."""
        self.filled_count = 0
        """Messages delivered from the backend's stream instead of the bus."""
        self.resyncs = 0
        """Resync events (per room, not per client)."""

    def position(self, room: str) -> Position | None:
        """The room's epoch and the last offset delivered here; None if unknown."""
        seq = self.rooms.get(room)
        return None if seq is None else Position(seq.epoch, seq.last)

    def adopt(self, room: str, epoch: str, top: int) -> Position:
        """Start following ``room`` at ``(epoch, top)`` unless it is followed already."""
        seq = self.rooms.get(room)
        if seq is None:
            seq = self.rooms[room] = RoomSequence(epoch, top)
        seq.touched = self._clock()
        return Position(seq.epoch, seq.last)

    def touch(self, room: str) -> None:
        """Date the room's activity now (a join is using it: :meth:`sweep` keeps it)."""
        seq = self.rooms.get(room)
        if seq is not None:
            seq.touched = self._clock()

    def forget(self, room: str) -> None:
        """Stop following ``room`` (its next message starts it afresh)."""
        self.rooms.pop(room, None)

    def sweep(self, keep: Collection[str], idle: float) -> int:
        """Forget the rooms not in ``keep`` quiet for ``idle`` seconds (no read in flight).

        Returns how many were forgotten.
        """
        cutoff = self._clock() - idle
        quiet = [
            room
            for room, seq in self.rooms.items()
            if seq.touched <= cutoff and not seq.filling and room not in keep
        ]
        for room in quiet:
            del self.rooms[room]
        return len(quiet)

    def retry(self) -> list[tuple[str, Step]]:
        """Ask again for what the rooms holding messages wait for, when no read is in flight.

        A read that failed (the backend slow to answer) leaves the held messages
        waiting: a quiet room would hold them until its next message.
        """
        return [
            (room, self._ask(room, seq, [], min(seq.held) - 1))
            for room, seq in self.rooms.items()
            if seq.held and not seq.filling
        ]

    def generation(self, room: str) -> int:
        """The room's generation, to hand back with :meth:`filled`."""
        seq = self.rooms.get(room)
        return -1 if seq is None else seq.generation

    def offer(self, message: RoomMessage, exclude: frozenset[str]) -> Step:
        """A message from the bus (``offset`` and ``epoch`` set)."""
        room, offset, epoch = message.room, message.offset, message.epoch
        assert offset is not None
        assert epoch is not None
        seq = self.rooms.get(room)
        now = self._clock()
        if seq is None:
            self.rooms[room] = RoomSequence(epoch, offset, touched=now)
            return Step([Delivery(message, exclude)])
        seq.touched = now
        if epoch != seq.epoch:
            if epoch in seq.retired:
                self.dropped += 1
                return _NOTHING
            actions: list[Delivery | Resync] = [
                self._reset(room, seq, EPOCH_CHANGED, epoch, offset - 1)
            ]
            if offset != seq.last + 1:
                seq.held[offset] = Delivery(message, exclude)
                return self._ask(room, seq, actions, offset - 1)
            seq.last = offset
            actions.append(Delivery(message, exclude))
            return Step(actions)
        if offset <= seq.last or offset in seq.held:
            self.dropped += 1
            return _NOTHING
        if offset == seq.last + 1 and not seq.filling:
            actions = [Delivery(message, exclude)]
            seq.last = offset
            self._drain(seq, actions)
            return Step(actions)
        seq.held[offset] = Delivery(message, exclude)
        if seq.filling:
            return _NOTHING
        return self._ask(room, seq, [], offset - 1)

    def checked(self, room: str, epoch: str, top: int) -> Step:
        """The backend's position of ``room`` (after a reconnection): catch up with it."""
        seq = self.rooms.get(room)
        if seq is None:
            self.rooms[room] = RoomSequence(epoch, top, touched=self._clock())
            return _NOTHING
        if epoch != seq.epoch:
            return self._new_epoch(room, seq, epoch, top)
        if seq.filling:
            seq.recheck = max(seq.recheck, top)  # asked for once the read in flight is done
            return _NOTHING
        if top <= seq.last:
            return _NOTHING
        return self._ask(room, seq, [], top)

    def filled(
        self,
        room: str,
        generation: int,
        epoch: str,
        top: int,
        entries: Iterable[Delivery],
    ) -> Step:
        """What the backend's stream held of the offsets :attr:`Step.fill` asked for.

        ``epoch`` and ``top`` are the backend's position at the read; ``entries``
        its messages after the room's last delivered offset, oldest first.
        """
        seq = self.rooms.get(room)
        if seq is None or seq.generation != generation:
            return _NOTHING  # superseded: the room was reset since the read began
        seq.filling = False
        seq.touched = self._clock()
        if epoch != seq.epoch:
            return self._new_epoch(room, seq, epoch, top)
        actions: list[Delivery | Resync] = []
        for entry in entries:
            offset = entry.message.offset
            assert offset is not None
            if offset > seq.last and offset not in seq.held:
                seq.held[offset] = entry
                self.filled_count += 1
        target = seq.target
        self._drain(seq, actions)
        while seq.last < target:
            # The stream no longer has seq.last + 1: jump to what comes next.
            ahead = [o for o in seq.held if o > seq.last]
            nxt = min(ahead) - 1 if ahead else target
            nxt = min(nxt, target)
            self.resyncs += 1
            seq.last = nxt
            actions.append(Resync(room, GAP, seq.epoch, nxt))
            self._drain(seq, actions)
        if seq.held:
            return self._ask(room, seq, actions, min(seq.held) - 1)
        recheck, seq.recheck = seq.recheck, 0
        if recheck > seq.last:
            return self._ask(room, seq, actions, recheck)
        return Step(actions)

    def _ask(
        self, room: str, seq: RoomSequence, actions: list[Delivery | Resync], upto: int
    ) -> Step:
        """Ask for ``seq.last + 1 .. upto``, or resync at once when that is too many."""
        if upto - seq.last > self.max_fill:
            self.resyncs += 1
            seq.last = upto
            actions.append(Resync(room, GAP, seq.epoch, upto))
            self._drain(seq, actions)
            if seq.held:  # another hole above: one more round
                return self._ask(room, seq, actions, min(seq.held) - 1)
            return Step(actions)
        seq.filling = True
        seq.target = upto
        return Step(actions, (seq.last + 1, upto))

    def _new_epoch(self, room: str, seq: RoomSequence, epoch: str, top: int) -> Step:
        resync = self._reset(room, seq, EPOCH_CHANGED, epoch, top)
        if top > seq.last:
            return self._ask(room, seq, [resync], top)
        return Step([resync])

    def _reset(self, room: str, seq: RoomSequence, reason: str, epoch: str, top: int) -> Resync:
        """Follow another epoch from its start (or its newest ``max_fill`` offsets).

        The offsets up to ``top`` are then read back and delivered after the resync.
        """
        if seq.epoch not in seq.retired:
            seq.retired.append(seq.epoch)
            del seq.retired[:-_RETIRED_KEPT]
        seq.epoch, seq.last = epoch, max(0, top - self.max_fill)
        seq.held.clear()
        seq.filling = False
        seq.target = seq.recheck = 0
        seq.generation += 1
        self.resyncs += 1
        return Resync(room, reason, epoch, seq.last)

    def _drain(self, seq: RoomSequence, actions: list[Delivery | Resync]) -> None:
        held = seq.held
        while held:
            entry = held.pop(seq.last + 1, None)
            if entry is None:
                break
            seq.last += 1
            actions.append(entry)
        for offset in [o for o in held if o <= seq.last]:
            del held[offset]
