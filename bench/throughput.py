"""Throughput phases: broadcasts kept in flight, deliveries counted by bytes, checked after.

While a phase runs, the subscribers are read by a small C program (:mod:`bench.reader`)
that only keeps what it reads and counts the bytes: no frame or JSON parsing and no
Python work per delivery, so the load client stays cheaper per delivery than the server.
Every delivered frame of a phase has the same length (fixed-width markers, one
publisher), so a byte count divided by that length is a number of deliveries; the
publisher waits until every subscriber has read the oldest broadcast still in flight.
After the phase each buffer is scanned for sequence markers and lost, duplicated and
reordered deliveries are counted exactly, outside the measured window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bench.progress import Progress
from bench.reader import Reader

if TYPE_CHECKING:
    from types import TracebackType

    from bench.wsclient import WsConn


class Window(Protocol):
    """A measurement window (CPU time, say) entered around the measured part of a phase."""

    def watch(self, pid: int) -> None:
        """Count ``pid`` (the reader) as part of the load client."""

    def __enter__(self) -> object: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


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
    window: Window,
    label: str,
) -> Phase:
    """Keep ``inflight`` broadcasts undelivered for ``warmup`` + ``seconds``.

    ``send(seq)`` publishes broadcast ``seq``; a broadcast is in flight until every
    subscriber has read it (checked per subscriber, not as a total). ``window`` is entered
    around the measured part only, and watches the reader. Afterwards every delivery
    since ``first`` is accounted for.
    """
    reader = await Reader.start(subs, first)
    window.watch(reader.pid)
    seq = first

    async def publish_until(deadline: float) -> None:
        nonlocal seq
        while time.monotonic() < deadline:
            oldest = seq - first - inflight + 1  # must be read everywhere before sending
            if oldest > 0:
                await reader.wait_delivered(oldest)
            send(seq)
            seq += 1

    def status() -> str:
        return f"{reader.delivered * len(subs):,} deliveries, {seq - first:,} broadcasts"

    try:
        async with Progress(label, status):
            await publish_until(time.monotonic() + warmup)
            b0, _ = await reader.snapshot()
            t0 = time.monotonic()
            with window:
                await publish_until(time.monotonic() + seconds)
                b1, frame_len = await reader.snapshot()
                t1 = time.monotonic()
    finally:
        integrity = await reader.finish(seq)
    return Phase(
        deliveries=(b1 - b0) // frame_len,
        seconds=t1 - t0,
        broadcasts=seq - first,
        end_seq=seq,
        frame_len=frame_len,
        integrity=integrity,
    )
