"""The heartbeat sweeper: one timer pings each connection once per interval, evicts the silent."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection
from typing import Final

from .config import HeartbeatConfig
from .connection import Connection

__all__ = ["HEARTBEAT_TICK", "Heartbeat"]

HEARTBEAT_TICK: Final = 0.02
"""Seconds between heartbeat slices (at most; a tenth of the interval when shorter)."""


class Heartbeat:
    """Pings connections in small slices spread over the interval; evicts silent ones.

    ``connections`` returns the live connections, ``ping`` queues the ping for a
    slice of them, ``expire`` evicts one that stayed silent, and ``clock`` is the
    time base of :attr:`Connection.last_seen`.
    """

    __slots__ = ("_clock", "_connections", "_expire", "_ping", "_task", "config")

    def __init__(
        self,
        config: HeartbeatConfig | None,
        *,
        connections: Callable[[], Collection[Connection]],
        ping: Callable[[list[Connection]], None],
        expire: Callable[[Connection], None],
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self._connections = connections
        self._ping = ping
        self._expire = expire
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """True while the timer runs."""
        task = self._task
        return task is not None and not task.done()

    def start(self, interval: float | None = None, timeout: float | None = None) -> None:
        """(Re)start with the given timing; missing values come from :attr:`config`.

        The timing used becomes :attr:`config`. Needs a running event loop.
        """
        base = self.config or HeartbeatConfig()
        config = HeartbeatConfig(
            interval=base.interval if interval is None else interval,
            timeout=base.timeout if timeout is None else timeout,
        )
        loop = asyncio.get_running_loop()
        self.stop()
        self.config = config
        self._task = loop.create_task(self._run(config), name="lucent_ws heartbeat")

    def stop(self) -> None:
        """Stop the timer (connections stay open)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _run(self, config: HeartbeatConfig) -> None:
        # One timer sweeps every connection once per interval. The sweep is spread
        # evenly over the interval, a slice per tick, so that 10,000 pings (and their
        # pongs) never arrive at once; each slice is checked `timeout` after its ping,
        # which evicts a silent connection within [timeout, timeout + tick].
        loop = asyncio.get_running_loop()
        tick = min(HEARTBEAT_TICK, config.interval / 10)
        ticks_per_round = max(1, round(config.interval / tick))
        awaiting: deque[tuple[float, list[Connection]]] = deque()
        sweep: list[Connection] = []
        per_tick = 0
        position = ticks_per_round  # start a round at the first tick
        next_tick = loop.time() + tick
        while True:
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            next_tick = max(next_tick + tick, loop.time())
            now = self._clock()
            while awaiting and awaiting[0][0] + config.timeout <= now:
                pinged_at, pinged = awaiting.popleft()
                for conn in pinged:
                    if not conn.closed and conn.last_seen < pinged_at:
                        self._expire(conn)
            if position >= ticks_per_round:
                sweep = list(self._connections())
                per_tick = -(-len(sweep) // ticks_per_round)  # ceiling division
                position = 0
            first = position * per_tick
            position += 1
            due = [conn for conn in sweep[first : first + per_tick] if not conn.closed]
            if due:
                self._ping(due)
                awaiting.append((now, due))
