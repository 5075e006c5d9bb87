"""Coalescing concurrent requests into one round trip.

A history room's publishes each need the backend's answer (the offset), so each
is awaited; sent one by one, 32 publishes in flight are 32 round trips, and the
bus messages they publish reach the nodes one at a time, each in its own read
and its own write per subscriber. A :class:`Batcher` sends the requests made
while a batch is in flight together in the next one (one pipeline), in the
order they were made; each caller gets its own answer or exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class Batcher(Generic[Request, Answer]):
    """Sends requests through ``send``, one batch at a time, in the order they came.

    A request made while no batch is in flight goes at once (one task switch);
    requests made while one is in flight go together in the next. ``send(batch)``
    returns one answer or exception per request, in order; if it raises, every
    request of the batch gets that exception. A request whose caller stopped
    waiting (a timeout) before its batch went is never sent.
    """

    def __init__(
        self, send: Callable[[Sequence[Request]], Awaitable[Sequence[Answer | BaseException]]]
    ) -> None:
        self._send = send
        self._waiting: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, request: Request) -> Answer:
        """Queue ``request`` for the next batch and wait for its answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiting.append((request, future))
        if self._sender is None:
            self._sender = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = [(r, f) for r, f in self._waiting if not f.done()]
                self._waiting = []
                if batch:
                    await self._run(batch)
        finally:
            self._sender = None

    async def _run(self, batch: list[tuple[Request, asyncio.Future[Answer]]]) -> None:
        try:
            answers: Sequence[Answer | BaseException] = await self._send([r for r, _ in batch])
        except Exception as exc:  # the whole round trip failed
            answers = [exc] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():  # the caller gave up (timeout, cancellation)
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
