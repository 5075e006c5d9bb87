"""What a node has to publish, waiting for its writer task, and what could not be published."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from ..replica import Change
from .backend import Backend, HistoryAppend, Writes
from .membership import write_changes

__all__ = ["Item", "PublishQueue"]

Item = bytes | Change | HistoryAppend
"""A bus message, a membership change, or a history room's append."""

logger = logging.getLogger("lucent_ws.broker")


class PublishQueue:
    """Bus messages, membership changes and history appends, in order, for one writer task.

    While the backend is down nothing is queued: messages (and appends) are counted as
    ``undelivered`` (changes are not: the snapshot written on reconnection
    covers them). At most ``limit`` items wait; beyond that, the same.
    """

    def __init__(
        self, limit: int, clock: Callable[[], float] = time.monotonic, *, node_id: str = ""
    ) -> None:
        self.limit = limit
        self.node_id = node_id
        """The node whose items these are (what :meth:`write` writes for)."""
        self.open = False
        """True while the backend is reachable: items are accepted."""
        self.undelivered = 0
        self._items: deque[Item] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._clock = clock
        self._outage_since: float | None = None
        self._outage_undelivered = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> bool:
        """Queue one item; False (a message counted as undelivered) if it cannot be."""
        if not self.open or len(self._items) >= self.limit:
            if not isinstance(item, tuple):
                self.undelivered += 1
            return False
        self._items.append(item)
        self._wake.set()
        return True

    async def take(self) -> list[Item]:
        """Wait for items; return every item queued, oldest first."""
        if not self._items:
            self._idle.set()
            self._wake.clear()
            await self._wake.wait()
        batch = list(self._items)
        self._items.clear()
        return batch

    async def write(self, batch: list[Item], backend: Backend, next_seq: Callable[[], int]) -> None:
        """Write a batch taken from the queue to ``backend``, in order.

        Messages and changes go in one round trip per run; history appends run
        between them in queue order. On failure the messages (and appends) not
        written are counted as undelivered and the error is raised.
        """
        start = 0
        try:
            for index, item in enumerate(batch):
                if isinstance(item, HistoryAppend):
                    await _write_run(batch[start:index], backend, self.node_id, next_seq)
                    start = index
                    await backend.append(item)
                    start = index + 1
            await _write_run(batch[start:], backend, self.node_id, next_seq)
        except BaseException:
            self.undelivered += sum(1 for item in batch[start:] if not isinstance(item, tuple))
            raise

    async def drained(self) -> None:
        """Return once the writer has taken every item (it must be running)."""
        while self._items:
            self._idle.clear()
            self._wake.set()
            await self._idle.wait()

    def close(self) -> None:
        """Accept nothing more; what was queued is dropped, its messages counted as undelivered."""
        self.open = False
        self.undelivered += sum(1 for item in self._items if not isinstance(item, tuple))
        self._items.clear()

    def went_down(self, where: str, exc: BaseException) -> None:
        """The backend is unreachable: close, and log the outage once."""
        self.close()
        if self._outage_since is None:
            self._outage_since = self._clock()
            self._outage_undelivered = self.undelivered
            logger.error(
                "broker unreachable at %s (%s: %s); serving local clients only, retrying",
                where,
                type(exc).__name__,
                exc,
            )
        else:
            logger.debug("broker still unreachable: %s: %s", type(exc).__name__, exc)

    def came_up(self, node_id: str, where: str) -> None:
        """The backend is reachable again (or for the first time): log it."""
        if self._outage_since is not None:
            logger.warning(
                "broker reachable again after %.1f s; %d messages published meanwhile "
                "were not delivered to other nodes",
                self._clock() - self._outage_since,
                self.undelivered - self._outage_undelivered,
            )
            self._outage_since = None
        else:
            logger.info("node %s joined the cluster at %s", node_id, where)


async def _write_run(
    items: list[Item], backend: Backend, node_id: str, next_seq: Callable[[], int]
) -> None:
    if not items:
        return
    writes = Writes(node_id)
    changes = [item for item in items if isinstance(item, tuple)]
    if changes:
        write_changes(writes, changes, next_seq())
    writes.messages.extend(item for item in items if isinstance(item, bytes))
    await backend.write(writes)
