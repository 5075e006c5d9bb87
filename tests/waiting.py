"""Awaiting conditions in tests without fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the event loop until it is true; fail after ``timeout``.

    For state owned by code that offers no event to await (manager counts, ...).
    """
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
