"""The reconnect storm's lean client: the official clients' reconnect rules on raw sockets.

5,000 official Python clients would cost one aiohttp session machinery each in the load
process; a :class:`StormClient` is one raw connection (:class:`bench.wsclient.WsConn`)
and one task that does what ``lucent_ws.client`` does on a drain:

- it joins its room over v2 and keeps its position: the ``epoch`` and ``offset`` of the
  ``joined`` reply, then of every message, whose offset must follow the last one
  (a skip counts as lost, a repeat as duplicated, a step back as reordered);
- the drain hint ``{"type":"reconnect","within":S}`` makes the attempt after the close
  come at ``uniform(0, S)``; any other loss waits ``uniform(0, min(20, 0.5 * 2**n))``
  (``lucent_ws.client.policy``: full jitter, the attempt counter reset once joined);
- it re-joins with ``since`` and records the answer: recovered (with ``missed``) or not
  (with the ``reason``), and the replayed messages that follow; a join answered
  ``unavailable`` is sent again after a backoff on the same connection.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.wsclient import HandshakeError, WsConn, connect

BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0


@dataclass
class Tally:
    """What every client of a storm saw, together."""

    handshakes: list[float] = field(default_factory=list)
    """``time.monotonic()`` of every upgrade (101) once :attr:`since` is set."""
    statuses: Counter[int] = field(default_factory=Counter)
    """Refused upgrades by HTTP status (503: draining or full)."""
    refused: int = 0
    """Connection attempts refused or reset before any HTTP answer."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Re-joins with ``since``: ``recovered`` or the reason of ``recovered: false``."""
    missed: int = 0
    unavailable: int = 0
    """Joins answered ``unavailable`` (asked again after a backoff, like the official clients)."""
    since: float | None = None
    """When the storm started (the old hub got SIGTERM); earlier handshakes are setup."""


def _status(exc: HandshakeError) -> int:
    match = re.search(r" (\d{3}) ", str(exc) + " ")
    return int(match.group(1)) if match else 0


class StormClient:
    """One simulated client of a history room."""

    def __init__(self, host: str, port: int, room: str, tally: Tally, rng: random.Random) -> None:
        self.host, self.port, self.room = host, port, room
        self.tally = tally
        self.rng = rng
        self.epoch: str | None = None
        self.offset: int | None = None
        self.received = self.lost = self.duplicated = self.reordered = 0
        self.closed_at: float | None = None
        """When the server's close (1001 in a drain) arrived, during the storm."""
        self.rejoined_at: float | None = None
        """When the re-join's answer arrived, during the storm."""
        self.joined = asyncio.Event()
        self.conn: WsConn | None = None
        self._hint: float | None = None
        self._attempt = 0
        self._join_attempt = 0

    async def run(self, gate: asyncio.Semaphore) -> None:
        """Connect, join, and keep reconnecting until cancelled; ``gate`` paces the first join."""
        delay = 0.0
        async with gate:
            await self._session_until_joined()
        while True:
            if self.conn is not None:
                await self._read(self.conn)
                self.conn = None
                if self.tally.since is not None and self.closed_at is None:
                    self.closed_at = time.monotonic()
            if self._hint is not None:
                delay, self._hint = self.rng.uniform(0.0, self._hint), None
            else:
                delay = self.rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2**self._attempt))
                self._attempt += 1
            await asyncio.sleep(delay)
            await self._session_until_joined()

    async def _session_until_joined(self) -> None:
        """One attempt: connect and send the join; its answer is read by :meth:`_read`."""
        try:
            conn, _ = await connect(self.host, self.port, "/ws?v=2")
        except HandshakeError as exc:
            self.tally.statuses[_status(exc)] += 1
            return
        except (OSError, TimeoutError):
            self.tally.refused += 1
            return
        if self.tally.since is not None:
            self.tally.handshakes.append(time.monotonic())
        self.conn = conn
        self._send_join(conn)
        if not self.joined.is_set():  # the first join: wait for it here (paced by the gate)
            while not self.joined.is_set():
                try:
                    self._on(await conn.recv_json())
                except ConnectionResetError:
                    self.conn = None
                    return

    def _send_join(self, conn: WsConn) -> None:
        if conn is not self.conn or conn.closing():
            return
        join: dict[str, Any] = {"type": "join", "room": self.room}
        if self.epoch is not None and self.offset is not None:
            join["since"] = {"epoch": self.epoch, "offset": self.offset}
        conn.send_json(join)

    async def _read(self, conn: WsConn) -> None:
        while True:
            try:
                frame = await conn.recv_json()
            except ConnectionResetError:
                conn.abort()
                return
            self._on(frame)

    def _on(self, frame: Any) -> None:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            self._on_message(frame.get("epoch"), frame.get("offset"))
        elif kind == "joined":
            self._on_joined(frame)
        elif kind == "reconnect" and isinstance(frame.get("within"), int | float):
            self._hint = float(frame["within"])
        elif kind == "error" and frame.get("code") == "unavailable" and self.conn is not None:
            self.tally.unavailable += 1
            delay = self.rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2**self._join_attempt))
            self._join_attempt += 1
            asyncio.get_running_loop().call_later(delay, self._send_join, self.conn)

    def _on_joined(self, frame: dict[str, Any]) -> None:
        self._attempt = self._join_attempt = 0
        asked = self.epoch is not None
        recovered = frame.get("recovered") is True
        if asked:
            outcome = "recovered" if recovered else str(frame.get("reason"))
            self.tally.outcomes[outcome] += 1
            if recovered:
                self.tally.missed += int(frame.get("missed") or 0)
        if not (asked and recovered):
            self.epoch, self.offset = frame.get("epoch"), frame.get("offset")
        if self.tally.since is not None and self.rejoined_at is None:
            self.rejoined_at = time.monotonic()
        self.joined.set()

    def _on_message(self, epoch: object, offset: object) -> None:
        if not isinstance(epoch, str) or not isinstance(offset, int):
            return
        self.received += 1
        if epoch != self.epoch or self.offset is None:
            self.epoch, self.offset = epoch, offset
            return
        if offset == self.offset + 1:
            self.offset = offset
        elif offset > self.offset + 1:
            self.lost += offset - self.offset - 1
            self.offset = offset
        elif offset == self.offset:
            self.duplicated += 1
        else:
            self.reordered += 1


def buckets(times: list[float], start: float, width: float) -> list[int]:
    """How many ``times`` fall in each ``width``-second bucket from ``start``."""
    if not times:
        return []
    counts = [0] * (int((max(times) - start) / width) + 1)
    for t in times:
        counts[max(0, int((t - start) / width))] += 1
    return counts


def listen_overflows() -> dict[str, int]:
    """The kernel's ``TcpExt`` ListenOverflows and ListenDrops (``/proc/net/netstat``)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return {k: int(table.get(k, 0)) for k in ("ListenOverflows", "ListenDrops")}
    return {"ListenOverflows": 0, "ListenDrops": 0}
