"""Closing sockets: each close runs in the background under a time limit, then aborts."""

from __future__ import annotations

import asyncio
import logging

from .connection import Connection

__all__ = ["Closer"]

logger = logging.getLogger("lucent_ws.closing")


class Closer:
    """Runs the I/O layer's graceful close of each connection, aborting stuck ones.

    A close that does not finish within ``timeout`` seconds aborts the transport.
    """

    __slots__ = ("_tasks", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self, conn: Connection, code: int, message: str) -> None:
        """Close ``conn`` in the background (at once by abort outside an event loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            conn._transport.abort()
            return
        task = loop.create_task(self._close(conn, code, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Return when every close started so far has finished or aborted."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _close(self, conn: Connection, code: int, message: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await conn._close(code, message)
        except asyncio.CancelledError:
            conn._transport.abort()
            raise
        except (TimeoutError, ConnectionError, RuntimeError):
            conn._transport.abort()
        except Exception:
            logger.exception("closing connection %s failed", conn.id)
            conn._transport.abort()
