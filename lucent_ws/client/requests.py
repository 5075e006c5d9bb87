"""Requests in flight, matched to their answers by ``ref``; failed, never resent, on a drop."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ..errors import ConnectionClosed, Disconnected, RequestFailed

__all__ = ["PendingRequests"]


class PendingRequests:
    """The futures of the requests sent on the current connection, by ``ref``."""

    def __init__(self) -> None:
        self._refs = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str | None]] = {}

    def open(self, publish_id: str | None) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """A new ``ref`` and the future its answer settles."""
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = (future, publish_id)
        return ref, future

    def forget(self, ref: int) -> None:
        """Stop waiting for ``ref`` (answered, timed out or failed)."""
        self._pending.pop(ref, None)

    def answer(self, frame: dict[str, Any]) -> None:
        """Settle the request ``frame`` answers, if any: an error frame fails it."""
        ref = frame.get("ref")
        if not isinstance(ref, int) or ref not in self._pending:
            return
        future, publish_id = self._pending.pop(ref)
        if future.done():
            return
        if frame.get("type") == "error":
            future.set_exception(
                RequestFailed(
                    str(frame.get("code")), str(frame.get("message")), publish_id=publish_id
                )
            )
        else:
            future.set_result(frame)

    def fail_all(self, text: str, *, closed_code: int | None = None, final: bool = False) -> None:
        """Fail every request: :class:`Disconnected`, or :class:`ConnectionClosed` if ``final``."""
        pending, self._pending = self._pending, {}
        for future, publish_id in pending.values():
            if not future.done():
                future.set_exception(
                    ConnectionClosed(text, closed_code)
                    if final
                    else Disconnected(text, publish_id=publish_id)
                )
