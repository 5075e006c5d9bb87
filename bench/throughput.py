"""Throughput phases: broadcasts kept in flight, deliveries counted by bytes, checked after.

While a phase runs, a subscriber only keeps the chunks it reads and adds up their bytes
(no copying, no frame or JSON parsing, no per-message Python work), so the load client
stays cheap per delivery. Every delivered frame of a phase has the same length
(fixed-width markers, one publisher), so a subscriber's byte count divided by that
length is the number of deliveries it has read; the publisher waits until every
subscriber has read the oldest broadcast still in flight. After the phase each buffer is
scanned for sequence markers and lost, duplicated and reordered deliveries are counted
exactly, outside the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.deliveries import SeqTracker, Tally, scan
from bench.progress import Progress

if TYPE_CHECKING:
    from bench.wsclient import WsConn

READ_BATCH = 2 * 150  # bytes: wake a subscriber for two messages or more
NEVER = 1 << 62  # a byte count no subscriber reaches
_NRX = operator.attrgetter("nrx")


class LagWaiter:
    """A waiter for the subscribers of a phase that lag behind.

    A subscriber lags while its byte count ``nrx`` is below its ``wake_rx``; when the last
    lagging subscriber catches up, the waiter is woken.
    """

    def __init__(self) -> None:
        self.lagging = 0
        self._waiter: asyncio.Future[None] | None = None

    def caught_up(self) -> None:
        """Called by a subscriber whose byte count reached its ``wake_rx``."""
        self.lagging -= 1
        waiter = self._waiter
        if self.lagging <= 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_every(self, subs: Sequence[WsConn], nbytes: int) -> None:
        """Return once every subscriber has read ``nbytes`` bytes."""
        # C-level passes: this runs once per broadcast over every subscriber.
        lagging = list(
            itertools.compress(subs, map(operator.gt, itertools.repeat(nbytes), map(_NRX, subs)))
        )
        if not lagging:
            return
        self.lagging = len(lagging)
        self._waiter = asyncio.get_running_loop().create_future()
        for sub in lagging:
            sub.wake_rx = nbytes
        try:
            await self._waiter
        finally:
            self._waiter = None
            for sub in lagging:
                sub.wake_rx = NEVER


@dataclass
class Phase:
    """What a throughput phase measured."""

    deliveries: int  # in the measured window
    seconds: float  # length of the measured window
    broadcasts: int  # sent in the whole phase (warm-up included)
    end_seq: int  # the next sequence number
    frame_len: int
    integrity: dict[str, int]

    @property
    def per_second(self) -> float:
        """Deliveries per second in the measured window."""
        return self.deliveries / self.seconds


async def run_phase(
    subs: Sequence[WsConn],
    send: Callable[[int], None],
    first: int,
    *,
    inflight: int,
    warmup: float,
    seconds: float,
    window: AbstractContextManager[Any],
    label: str,
) -> Phase:
    """Keep ``inflight`` broadcasts undelivered for ``warmup`` + ``seconds``.

    ``send(seq)`` publishes broadcast ``seq``; a broadcast is in flight until every
    subscriber has read it (checked per subscriber, not as a total). ``window`` (a CPU
    window, say) is entered around the measured part only. Afterwards every delivery
    since ``first`` is accounted for.
    """
    lag = LagWaiter()
    for sub in subs:
        sub.count(lag)
        sub.read_batch(READ_BATCH)
    seq = first
    frame_len = 0

    async def wait_delivered(count: int) -> None:
        # Every subscriber has read the first ``count`` broadcasts of the phase.
        nonlocal frame_len
        if not frame_len:
            frame_len = await asyncio.wait_for(_first_frame_len(subs), 10.0)
        await asyncio.wait_for(lag.wait_every(subs, count * frame_len), 10.0)

    async def publish_until(deadline: float) -> None:
        nonlocal seq
        while time.monotonic() < deadline:
            oldest = seq - first - inflight + 1  # must be read everywhere before sending
            if oldest > 0:
                await wait_delivered(oldest)
            send(seq)
            seq += 1

    def received() -> int:
        return sum(map(_NRX, subs))

    def status() -> str:
        return f"{received() // max(frame_len, 1):,} deliveries, {seq - first:,} broadcasts"

    async with Progress(label, status):
        await publish_until(time.monotonic() + warmup)
        b0, t0 = received(), time.monotonic()
        with window:
            await publish_until(time.monotonic() + seconds)
            b1, t1 = received(), time.monotonic()
        for sub in subs:
            sub.read_batch(1)
        with contextlib.suppress(TimeoutError):
            await wait_delivered(seq - first)
    return Phase(
        deliveries=(b1 - b0) // frame_len,
        seconds=t1 - t0,
        broadcasts=seq - first,
        end_seq=seq,
        frame_len=frame_len,
        integrity=account(subs, first, seq, frame_len),
    )


async def _first_frame_len(subs: Sequence[WsConn]) -> int:
    """The length of the first complete frame any subscriber has read (server frames)."""
    while True:
        for sub in subs:
            length = frame_length(b"".join(sub.rx[:8]))
            if length:
                return length
        await asyncio.sleep(0.001)


def frame_length(buf: bytes | bytearray) -> int:
    """Length of the unmasked frame at the start of ``buf``; 0 until it is complete."""
    if len(buf) < 2:
        return 0
    n, head = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return 0
        n, head = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return 0
        n, head = int.from_bytes(buf[2:10], "big"), 10
    return head + n if len(buf) >= head + n else 0


def account(subs: Sequence[WsConn], first: int, end: int, frame_len: int) -> dict[str, int]:
    """Scan every subscriber's buffer for markers; free the buffers; count what went wrong.

    ``stray_bytes`` is what the buffers hold beyond ``received`` whole frames: non-zero
    if a frame of another length arrived, which would make the byte count inexact.
    """
    totals = {"received": 0, "lost": 0, "duplicated": 0, "reordered": 0, "stray_bytes": 0}
    for sub in subs:
        tracker = SeqTracker(first, Tally())
        seqs, _ = scan(b"".join(sub.rx))
        if seqs:
            tracker.account(seqs)
        totals["received"] += tracker.received
        totals["lost"] += tracker.lost(end)
        totals["duplicated"] += tracker.duplicated
        totals["reordered"] += tracker.reordered
        totals["stray_bytes"] += sub.nrx - tracker.received * frame_len
        sub.drain()
    return totals
