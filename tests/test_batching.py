"""The Batcher that coalesces history appends: order, errors, callers that give up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from lucent_ws.broker.batching import Batcher


class Backend:
    """Answers each request with itself doubled; the first batch waits for ``release``."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def send(self, batch: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(batch))
        if len(self.batches) == 1:
            await self.release.wait()
        return [n * 2 if n >= 0 else ValueError(n) for n in batch]


async def test_requests_made_while_one_is_in_flight_go_together_in_order() -> None:
    backend = Backend()
    batcher: Batcher[int, int] = Batcher(backend.send)
    first = asyncio.ensure_future(batcher.submit(1))
    while not backend.batches:  # the first batch is in flight
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.submit(n)) for n in (2, -3, 4)]
    await asyncio.sleep(0)
    backend.release.set()
    assert await first == 2
    results = await asyncio.gather(*rest, return_exceptions=True)
    print("batches", backend.batches)
    assert backend.batches == [[1], [2, -3, 4]]
    assert results[0] == 4
    assert isinstance(results[1], ValueError)
    assert results[2] == 8


async def test_a_request_whose_caller_gave_up_before_it_was_sent_is_never_sent() -> None:
    # A history publish that timed out waiting behind a slow batch answered
    # `unavailable`: it must not be appended (and delivered) afterwards anyway.
    backend = Backend()
    batcher: Batcher[int, int] = Batcher(backend.send)
    first = asyncio.ensure_future(batcher.submit(1))
    while not backend.batches:  # the first batch is in flight
        await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await batcher.submit(2)
    later = asyncio.ensure_future(batcher.submit(3))
    backend.release.set()
    assert await first == 2
    assert await later == 6  # the next batch works
    sent = [n for batch in backend.batches for n in batch]
    print("sent", sent)
    assert sent == [1, 3]


async def test_a_failed_round_trip_fails_its_batch_only() -> None:
    calls = 0

    async def send(batch: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return list(batch)

    batcher: Batcher[int, int] = Batcher(send)
    with pytest.raises(ConnectionError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2
