"""Throughput phases: broadcasts kept in flight, deliveries counted by bytes, checked after.

While a phase runs, the subscribers are read by a small C program (``bench/reader.c``)
that only keeps what it reads and counts the bytes: no frame or JSON parsing and no
Python work per delivery, so the load client stays cheaper per delivery than the server.
Every delivered frame of a phase has the same length (fixed-width markers, one
publisher), so a byte count divided by that length is a number of deliveries; the
publisher waits until every subscriber has read the oldest broadcast still in flight.
After the phase each buffer is scanned for sequence markers and lost, duplicated and
reordered deliveries are counted exactly, outside the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bench.progress import Progress

if TYPE_CHECKING:
    from types import TracebackType

    from bench.wsclient import WsConn

READER_SOURCE = Path(__file__).with_name("reader.c")
BUILD_DIR = Path(__file__).with_name(".build")
TIMEOUT = 10.0  # seconds: a broadcast not read everywhere by then fails the phase
INTEGRITY = ("received", "lost", "duplicated", "reordered", "stray_bytes")  # what finish counts


class Window(Protocol):
    """A measurement window (CPU time, say) entered around the measured part of a phase."""

    def watch(self, pid: int) -> None:
        """Count ``pid`` (the reader) as part of the load client."""

    def __enter__(self) -> object: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def c_compiler() -> str | None:
    """The C compiler the reader is built with, if the machine has one."""
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def reader_binary() -> Path:
    """The compiled reader, built from ``reader.c`` with ``cc`` when the source changed."""
    source = READER_SOURCE.read_bytes()
    binary = BUILD_DIR / f"reader-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.exists():
        cc = c_compiler()
        if cc is None:
            raise RuntimeError("the load client needs a C compiler: apt-get install gcc")
        BUILD_DIR.mkdir(exist_ok=True)
        partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")  # then renamed
        subprocess.run([cc, "-O2", "-o", str(partial), str(READER_SOURCE)], check=True)
        partial.rename(binary)
    return binary


class Reader:
    """The reader process of one phase, reading ``subs`` while they are paused here."""

    def __init__(self, process: asyncio.subprocess.Process, conns: Sequence[WsConn]) -> None:
        self.process = process
        self.conns = conns  # subscribers and watched connections
        self.delivered = 0  # broadcasts every subscriber has read
        self._waiter: tuple[int, asyncio.Future[None]] | None = None
        self.latencies_ns = array("q")  # stamp mode: one per delivery, after finish
        self.pings: dict[str, int] = {}  # with pings: how they reached the connections
        self._replies: asyncio.Queue[list[int]] = asyncio.Queue()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lines = asyncio.ensure_future(self._read_lines())

    @classmethod
    async def start(
        cls,
        subs: Sequence[WsConn],
        first: int,
        *,
        stamp: bool = False,
        reserve: int = 0,
        pings: bool = False,
        watch: Sequence[WsConn] = (),
    ) -> Reader:
        """Pause reading ``subs`` here and start a reader on them (broadcasts from ``first``).

        With ``stamp`` every read is woken at once and time-stamped, and ``finish``
        fills ``latencies_ns``; without it reads are batched (throughput). ``reserve``
        bytes per subscriber are allocated before reading starts. With ``pings`` (stamp
        mode) the reader answers JSON pings on ``subs`` and on ``watch`` (connections
        that only get pings), and ``finish`` fills ``pings``.
        """
        closed = sum(sub.closing() for sub in subs)
        if closed:
            raise RuntimeError(f"{closed} subscribers were closed before the phase")
        conns = [*subs, *(conn for conn in watch if not conn.closing())]
        fds = [conn.fileno() for conn in conns]
        for conn in conns:
            conn.pause()
        try:
            process = await asyncio.create_subprocess_exec(
                str(reader_binary()), "stamp" if stamp else "count", str(first), str(reserve),
                "1" if pings else "0", str(len(subs)), *map(str, fds),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds,
            )  # fmt: skip
        except BaseException:
            for conn in conns:
                conn.resume()
            raise
        reader = cls(process, conns)
        done, _ = await asyncio.wait(
            {reader._ready, reader._lines}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if reader._ready not in done:
            with contextlib.suppress(RuntimeError, ValueError):
                await reader.finish(first, timeout=0.0)
            raise RuntimeError("the reader did not start")
        return reader

    @property
    def pid(self) -> int:
        """Process id of the reader."""
        return self.process.pid

    async def _read_lines(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            kind, *values = raw.split()
            if kind == b"ready":
                self._ready.set_result(None)
            elif kind == b"D":
                self.delivered = int(values[0])
                waiter = self._waiter
                if waiter is not None and self.delivered >= waiter[0] and not waiter[1].done():
                    waiter[1].set_result(None)
            elif kind == b"P":
                names = ("pings", "pinged", "fewest", "gap_median_ns", "gap_max_ns", "closed")
                self.pings = dict(zip(names, map(int, values), strict=True))
            else:
                numbers = [int(v) for v in values]
                if kind == b"R" and len(numbers) == 6:  # latencies follow
                    raw = await self.process.stdout.readexactly(numbers[5] * 8)
                    self.latencies_ns.frombytes(raw)
                self._replies.put_nowait(numbers)

    async def _ask(self, command: str, timeout: float = TIMEOUT) -> list[int]:
        assert self.process.stdin is not None
        while not self._replies.empty():  # a late answer to a question that timed out
            self._replies.get_nowait()
        self.process.stdin.write(command.encode() + b"\n")
        get = asyncio.ensure_future(self._replies.get())
        done, _ = await asyncio.wait(
            {get, self._lines}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if get not in done:
            get.cancel()
            raise RuntimeError(f"the reader did not answer {command!r}")
        return get.result()

    async def wait_delivered(self, count: int) -> None:
        """Return once every subscriber has read ``count`` broadcasts of the phase."""
        if self.delivered >= count:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiter = (count, future)
        try:
            await asyncio.wait_for(future, TIMEOUT)
        finally:
            self._waiter = None

    async def snapshot(self) -> tuple[int, int]:
        """Bytes read so far and the frame length (0 until known)."""
        nbytes, frame_len = await self._ask("S")
        return nbytes, frame_len

    async def finish(self, end: int, timeout: float = TIMEOUT) -> dict[str, int]:
        """Account for every broadcast before ``end``; resume ``subs``.

        The reader first reads until every subscriber has read them (or ``timeout``).
        """
        command = f"E {end} {round(timeout * 1000)}"
        try:
            answer = await self._ask(command, timeout + TIMEOUT)
            await self.process.wait()
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self._lines.cancel()
            for conn in self.conns:
                conn.resume()
        return dict(zip(INTEGRITY, answer[: len(INTEGRITY)], strict=True))


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
