"""History rooms over a broker: the backend numbers, every node delivers in sequence.

:class:`BrokerHistory` is the :class:`~lucent_ws.cluster.SharedHistory` of a
:class:`~lucent_ws.broker.Broker`. A history room's offsets and epoch are
assigned by the backend (:meth:`~lucent_ws.broker.backend.Backend.append`, one
atomic step that also publishes), never by a node; every node, the publisher
included, delivers the room's messages from the bus through a
:class:`~lucent_ws.sequencer.Sequencer`:

- a message ahead of the next offset is held while the missing ones are read
  back from the backend's stream (:meth:`~lucent_ws.broker.backend.Backend.read`);
  what the stream no longer has becomes one ``resync`` (``gap``) to the room's
  local v2 members;
- another epoch (the backend lost its data, or the room expired) is one
  ``resync`` (``epoch_changed``);
- after the broker reconnects, every history room with local members is
  checked against the backend's position, so a blip with no later message is
  caught up too;
- :meth:`BrokerHistory.tick` (the broker's lease period) reads again what a
  failed read left held, and forgets the rooms without local members quiet for
  :attr:`BrokerHistory.idle` seconds.

While the backend is unreachable, :meth:`BrokerHistory.append` raises
:class:`~lucent_ws.errors.Unavailable`: no offset is handed out that the
cluster cannot keep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..cluster import HistoryTarget
from ..envelope import RoomMessage
from ..errors import Unavailable
from ..history import new_epoch
from ..policy import RoomPolicy
from ..ring import Position
from ..sequencer import Delivery, Resync, Sequencer, Step
from . import wire
from .backend import Appended, Backend, HistoryAppend, StreamEntry, StreamRead
from .queue import PublishQueue

__all__ = ["BrokerHistory", "new_epoch"]

logger = logging.getLogger("lucent_ws.broker")


class BrokerHistory:
    """History rooms over ``backend`` for one node (see the module docs)."""

    def __init__(
        self,
        backend: Backend,
        node_id: str,
        queue: PublishQueue,
        target: Callable[[], HistoryTarget | None],
        *,
        timeout: float = 5.0,
    ) -> None:
        self._backend = backend
        self._node_id = node_id
        self._queue = queue
        self._target = target
        self.timeout = timeout
        """Seconds an append or a read may take before it counts as unavailable."""
        self.idle = 60.0
        """Seconds a room without local members is followed after its last message."""
        self.sequencer = Sequencer()
        self._progress = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- SharedHistory ---------------------------------------------------------------

    def position(self, room: str) -> Position | None:
        """The room's epoch and the last offset delivered here."""
        return self.sequencer.position(room)

    async def follow(self, room: str, policy: RoomPolicy) -> Position:
        """The room's position here, read from the backend first if it is not followed yet."""
        known = self.sequencer.position(room)
        if known is not None:
            self.sequencer.touch(room)
            return known
        read = await self.read(room, policy, 0, 0)
        return self.sequencer.adopt(room, read.epoch, read.top)

    async def append(
        self,
        message: RoomMessage,
        policy: RoomPolicy,
        exclude: frozenset[str],
        publish_id: str | None,
    ) -> Appended:
        """Append through the backend; :class:`Unavailable` while it is unreachable."""
        if not self._queue.open:
            raise Unavailable()
        request = self._request(message, policy, exclude, publish_id)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._backend.append(request)
        except Exception as exc:
            logger.warning("history append to %s failed: %s", self._backend.name, exc)
            raise Unavailable() from None

    def append_later(
        self, message: RoomMessage, policy: RoomPolicy, exclude: frozenset[str]
    ) -> bool:
        """Queue the append for the ordered publisher; False while down."""
        return self._queue.put(self._request(message, policy, exclude, None))

    async def read(self, room: str, policy: RoomPolicy, after: int, count: int) -> StreamRead:
        """The backend's position and entries; :class:`Unavailable` while unreachable."""
        if not self._queue.open:
            raise Unavailable()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._backend.read(room, after, count, new_epoch(), policy.history_ttl)
        except Exception as exc:
            logger.warning("history read from %s failed: %s", self._backend.name, exc)
            raise Unavailable() from None

    async def caught_up(self, room: str, top: int, timeout: float) -> Position | None:
        """Wait until this node delivered ``top`` (or moved on); the position, None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._progress.clear()  # before the check: a delivery after it wakes the wait
            position = self.sequencer.position(room)
            if position is not None and position.offset >= top:
                return position
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await self._progress.wait()
            except TimeoutError:
                return None

    # --- from the broker ---------------------------------------------------------------

    def on_bus(self, message: RoomMessage, exclude: frozenset[str]) -> None:
        """A history room's message from the bus (any node's, this one's included)."""
        self._perform(message.room, self.sequencer.offer(message, exclude))

    def reconnected(self) -> None:
        """The broker is up again: check the rooms with local members against the backend."""
        self._spawn(self._check_rooms())

    def tick(self) -> int:
        """Read again what a failed read left held; forget the quiet rooms without local members.

        Returns how many rooms were forgotten.
        """
        for room, step in self.sequencer.retry():
            self._perform(room, step)
        target = self._target()
        local = set() if target is None else set(target.local_rooms())
        return self.sequencer.sweep(local, self.idle)

    async def stop(self) -> None:
        """Cancel the reads in flight."""
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals ---------------------------------------------------------------------

    def _request(
        self,
        message: RoomMessage,
        policy: RoomPolicy,
        exclude: frozenset[str],
        publish_id: str | None,
    ) -> HistoryAppend:
        prefix, suffix = wire.room_frame_parts(self._node_id, message, exclude)
        return HistoryAppend(
            message.room,
            message.payload,
            message.sender,
            tuple(exclude),
            publish_id,
            policy.history_size,
            policy.history_ttl,
            new_epoch(),
            prefix,
            suffix,
        )

    def _perform(self, room: str, step: Step) -> None:
        target = self._target()
        if target is not None:
            for action in step.actions:
                if isinstance(action, Resync):
                    target.resync(action)
                else:
                    target.deliver(action.message, action.exclude)
        if step.actions:
            self._progress.set()
        if step.fill is not None:
            # The generation of the ask, not of when the task starts: a reset in between
            # (another epoch) makes this read stale, and it must not answer for the next.
            generation = self.sequencer.generation(room)
            self._spawn(self._fill(room, generation, *step.fill))

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, room: str, generation: int, first: int, last: int) -> None:
        target = self._target()
        policy = target.policy(room) if target is not None else None
        if policy is None:
            self._give_up(room, generation)
            return
        try:
            read = await self.read(room, policy, first - 1, last - first + 1)
        except Unavailable:
            self._give_up(room, generation)  # the check after reconnecting retries
            return
        entries = [_delivery(room, read.epoch, entry) for entry in read.entries]
        logger.info("room %s: %d of offsets %d..%d read back", room, len(entries), first, last)
        self._perform(room, self.sequencer.filled(room, generation, read.epoch, read.top, entries))

    def _give_up(self, room: str, generation: int) -> None:
        seq = self.sequencer.rooms.get(room)
        if seq is not None and seq.generation == generation:
            seq.filling = False

    async def _check_rooms(self) -> None:
        target = self._target()
        if target is None:
            return
        local = set(target.local_rooms())
        for room in list(self.sequencer.rooms):
            if room not in local:
                self.sequencer.forget(room)  # no one here to tell: start afresh if it comes
        for room in local:
            policy = target.policy(room)
            if policy is None:
                continue
            try:
                read = await self.read(room, policy, 0, 0)
            except Unavailable:
                return  # down again: the next reconnection checks again
            self._perform(room, self.sequencer.checked(room, read.epoch, read.top))


def _delivery(room: str, epoch: str, entry: StreamEntry) -> Delivery:
    message = RoomMessage(room, entry.payload, entry.sender, entry.offset, epoch)
    return Delivery(message, frozenset(entry.exclude))
