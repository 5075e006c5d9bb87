"""Recent history for the dashboard chart: connections and message rates, sampled."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TypedDict

from ..manager import WebSocketManager

__all__ = ["Sample", "StatsHistory"]


class Sample(TypedDict):
    """One point of the history (JSON form)."""

    t: float
    connections: int
    messagesInPerSec: float
    messagesOutPerSec: float


class StatsHistory:
    """Samples ``manager`` every ``interval`` seconds and keeps the last ``size`` samples."""

    def __init__(
        self,
        manager: WebSocketManager,
        *,
        interval: float = 2.0,
        size: int = 150,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.manager = manager
        self.interval = interval
        self._samples: deque[Sample] = deque(maxlen=size)
        self._wall_clock = wall_clock
        self._clock = clock
        self._last: tuple[float, int, int] | None = None

    def sample(self) -> Sample:
        """Record one sample now and return it."""
        now = self._clock()
        counters = self.manager.counters
        msg_in, msg_out = counters.messages_in, counters.messages_out
        rate_in = rate_out = 0.0
        if self._last is not None:
            then, last_in, last_out = self._last
            elapsed = now - then
            if elapsed > 0:
                rate_in = round(max(0, msg_in - last_in) / elapsed, 2)
                rate_out = round(max(0, msg_out - last_out) / elapsed, 2)
        self._last = (now, msg_in, msg_out)
        point: Sample = {
            "t": round(self._wall_clock(), 3),
            "connections": len(self.manager),
            "messagesInPerSec": rate_in,
            "messagesOutPerSec": rate_out,
        }
        self._samples.append(point)
        return point

    def samples(self) -> list[Sample]:
        """Every kept sample, oldest first."""
        return list(self._samples)

    async def run(self) -> None:
        """Sample forever (cancel to stop)."""
        while True:
            self.sample()
            await asyncio.sleep(self.interval)
