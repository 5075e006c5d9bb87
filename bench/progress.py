"""A one-line progress display for running scenarios (rewritten in place on a terminal)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from types import TracebackType


class Progress:
    """Shows ``label`` and ``status()`` every ``interval`` seconds while active.

    On a terminal the line is redrawn in place; otherwise a line is printed every
    ``log_interval`` seconds so logs stay short.
    """

    def __init__(
        self,
        label: str,
        status: Callable[[], str],
        interval: float = 0.5,
        log_interval: float = 5.0,
    ) -> None:
        self.label = label
        self.status = status
        self.tty = sys.stderr.isatty()
        self.interval = interval if self.tty else log_interval
        self._task: asyncio.Task[None] | None = None
        self._start = 0.0

    def _line(self) -> str:
        return f"  {self.label} [{time.monotonic() - self._start:5.1f}s] {self.status()}"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.tty:
                sys.stderr.write("\r\x1b[2K" + self._line())
            else:
                sys.stderr.write(self._line() + "\n")
            sys.stderr.flush()

    async def __aenter__(self) -> Progress:
        self._start = time.monotonic()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
        line = self._line()
        sys.stderr.write(("\r\x1b[2K" if self.tty else "") + line + "\n")
        sys.stderr.flush()


def say(text: str) -> None:
    """Print a status line to stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
