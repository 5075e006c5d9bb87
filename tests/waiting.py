"""Awaiting conditions in tests without fixed sleeps."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


async def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll ``condition`` on the event loop until it is true; fail after ``timeout`` seconds.

    For state owned by code that offers no event to await (manager counts, stats of
    another process, ...). ``condition`` may return an awaitable, which is awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {what or condition}")
        await asyncio.sleep(0.01)
