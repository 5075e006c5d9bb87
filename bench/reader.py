"""The load client's reader: a C program (``reader.c``) that reads subscribers in a phase.

The Python side opens, joins and drives connections; while a phase runs it stops
reading them and the reader, which inherits their sockets, keeps and counts what
arrives, tells how many broadcasts every subscriber has read, and checks every
delivery after the phase (see ``reader.c`` for its protocol on stdin and stdout).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.wsclient import WsConn

READER_SOURCE = Path(__file__).with_name("reader.c")
BUILD_DIR = Path(__file__).with_name(".build")
TIMEOUT = 10.0  # seconds: a broadcast not read everywhere by then fails the phase
INTEGRITY = ("received", "lost", "duplicated", "reordered", "stray_bytes")  # what finish counts


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
