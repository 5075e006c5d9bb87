"""An asyncio event loop whose clock jumps ahead instead of sleeping, for timed models.

Sockets and callbacks run as usual; when the loop would wait for its next timer,
the clock moves to that timer at once. Leases of seconds then cost microseconds,
and every part that reads ``loop.time`` (timers, ``asyncio.timeout``, the
manager and broker clocks when given ``loop.time``) agrees on the time.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class _JumpingSelector:
    """Polls the real selector without waiting; a wait becomes a jump of the clock."""

    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = self._real.select(0)
        if not events:
            if timeout is None:
                raise RuntimeError("virtual-time loop: nothing scheduled, it would wait forever")
            self._loop.advance(timeout)
        if self._loop.time() > self._loop.limit:
            raise RuntimeError(f"virtual-time loop: past {self._loop.limit} s, something spins")
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a virtual clock that starts at 0."""

    def __init__(self, limit: float = 3600.0) -> None:
        super().__init__()
        self._now = 0.0
        self.limit = limit
        self._selector: Any = _JumpingSelector(self._selector, self)

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back)."""
        if seconds > 0:
            self._now += seconds
