"""A room with N subscribers and one publisher, driven in throughput or latency phases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.deliveries import broadcast_frame_body
from bench.frames import client_frame
from bench.proc import CpuWindow
from bench.progress import Progress, say
from bench.quiet import QUIET, wait_quiet
from bench.reader import Reader
from bench.servers import HOST, ServerProcess
from bench.stats import latency_summary
from bench.throughput import run_phase
from bench.wsclient import WsConn, connect, connect_many

ROOM = "bench"
FRAME_ROOM = 400  # bytes: more than one broadcast's frame
ATTEMPTS = 3  # a phase disturbed by other programs is measured again


class FanoutRig:
    """Subscribers joined to one room of ``server`` and a publisher member of it."""

    def __init__(
        self,
        server: ServerProcess,
        room: str = ROOM,
        attempts: int = ATTEMPTS,
        path: str = "/ws",
    ) -> None:
        self.server = server
        self.path = path
        self.attempts = attempts
        self.room = room
        self.subs: list[WsConn] = []
        self.pub: WsConn | None = None
        self.seq = 0

    async def grow(self, total: int) -> None:
        """Connect and join subscribers until there are ``total``."""
        missing = total - len(self.subs)
        if missing <= 0:
            return
        label = f"{self.server.spec.name}: subscribers"
        async with Progress(label, lambda: f"{len(self.subs):,}/{total:,} joined"):
            await connect_many(
                HOST, self.server.port, missing, room=self.room, into=self.subs, path=self.path
            )
        for sub in self.subs:
            sub.drain()
        if self.pub is None:
            self.pub, _ = await connect(HOST, self.server.port, self.path)
            await self.pub.join(self.room)
            self.pub.drain()

    def _send(self, seq: int) -> None:
        assert self.pub is not None
        self.pub.send_raw(client_frame(broadcast_frame_body(self.room, seq, seq)))

    async def throughput(
        self, seconds: float, inflight: int = 8, warmup: float = 1.0
    ) -> dict[str, Any]:
        """Keep ``inflight`` broadcasts undelivered for ``seconds``; measure the rate.

        Measured again (up to ``ATTEMPTS`` times) when other programs were busy meanwhile.
        """
        return await self._undisturbed(lambda: self._throughput(seconds, inflight, warmup))

    async def latency(
        self, seconds: float, rate: float, watch: Sequence[WsConn] = ()
    ) -> dict[str, Any]:
        """Send ``rate`` broadcasts per second, one at a time; measure end-to-end latency.

        With ``WsConn.watch_pings`` set, pings are answered on the subscribers and on
        ``watch`` (other connections of the server) while the phase runs, and the
        figures say how the pings reached them. Measured again (up to ``ATTEMPTS``
        times) when other programs were busy meanwhile.
        """
        return await self._undisturbed(lambda: self._latency(seconds, rate, watch))

    async def _undisturbed(self, phase: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for attempt in range(1, self.attempts + 1):
            await wait_quiet(30.0, exclude_pid=self.server.pid)
            figures = await phase()
            figures["attempts"] = attempt
            if figures["other_cpu_share"] < QUIET or attempt == self.attempts:
                break
            say(f"  disturbed: other programs used {figures['other_cpu_share']:.2f} CPUs")
        return figures

    async def _throughput(self, seconds: float, inflight: int, warmup: float) -> dict[str, Any]:
        window = CpuWindow(self.server.pid)
        phase = await run_phase(
            self.subs,
            self._send,
            self.seq,
            inflight=inflight,
            warmup=warmup,
            seconds=seconds,
            window=window,
            label=f"{self.server.spec.name}: N={len(self.subs):,} throughput",
        )
        self.seq = phase.end_seq
        measured = phase.deliveries
        return {
            "subscribers": len(self.subs),
            "inflight": inflight,
            "broadcasts": phase.broadcasts,
            "deliveries_per_s": phase.per_second,
            "server_us_per_delivery": window.server / measured * 1e6,
            "client_us_per_delivery": window.client / measured * 1e6,
            "server_cpu_share": window.server / phase.seconds,
            "client_cpu_share": window.client / phase.seconds,
            "other_cpu_share": window.other / phase.seconds,
            **phase.integrity,
        }

    async def _latency(
        self, seconds: float, rate: float, watch: Sequence[WsConn]
    ) -> dict[str, Any]:
        n = len(self.subs)
        first = self.seq
        count = max(1, round(seconds * rate))
        pings = WsConn.watch_pings
        reader = await Reader.start(
            self.subs, first, stamp=True, reserve=count * FRAME_ROOM, pings=pings, watch=watch
        )
        window = CpuWindow(self.server.pid)
        window.watch(reader.pid)
        label = f"{self.server.spec.name}: N={n:,} latency at {rate:g}/s"
        try:
            async with Progress(label, lambda: f"{self.seq - first}/{count} broadcasts"):
                with window:
                    start = await self._send_paced(count, rate)
                    with contextlib.suppress(TimeoutError):
                        await reader.wait_delivered(count)
                    elapsed = time.monotonic() - start
        finally:
            integrity = await reader.finish(self.seq)
        delivered = max(integrity["received"], 1)
        figures = {
            "subscribers": n,
            "rate_per_s": rate,
            "broadcasts": count,
            "server_us_per_delivery": window.server / delivered * 1e6,
            "client_cpu_share": window.client / elapsed,  # the reader polls: about 1
            "other_cpu_share": window.other / elapsed,
            **latency_summary(reader.latencies_ns),
            **{k: integrity[k] for k in ("received", "lost", "duplicated", "reordered")},
        }
        if pings:
            seen = reader.pings
            figures.update(
                pings_received=seen["pings"],
                connections_pinged=seen["pinged"],
                pings_per_connection_min=seen["fewest"],
                ping_gap_median_s=seen["gap_median_ns"] / 1e9,
                ping_gap_max_s=seen["gap_max_ns"] / 1e9,
                closed_by_server=seen["closed"],
            )
        return figures

    async def _send_paced(self, count: int, rate: float) -> float:
        """Send ``count`` broadcasts at ``rate`` per second; return when it started."""
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._send(self.seq)
            self.seq += 1
        return start

    def close(self) -> None:
        """Drop every connection."""
        for conn in [*self.subs, *([self.pub] if self.pub else [])]:
            conn.abort()
        self.subs = []
        self.pub = None
