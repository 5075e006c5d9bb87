"""Raw v2 WebSocket clients for the history-over-Redis tests: subscribers that record
every position they receive, and a publisher that retries with ids through any node.

Both speak the JSON protocol over aiohttp's client directly (not lucent_ws.client), so
the tests see exactly what a third-party client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

Position = tuple[int, str]
"""(offset, epoch)."""


@dataclass(frozen=True)
class Delivery:
    """One room message as a subscriber received it."""

    offset: int
    epoch: str
    replay: bool


@dataclass
class Subscriber:
    """A v2 client in some history rooms; records every delivery, join answer and resync.

    ``resynced_at[room]``: for each ``resync``, how many of the room's messages had
    arrived before it.

    ``last[room]`` is its position: the last offset it received in the room (or the
    room's top from ``joined``), which a reconnect sends back as ``since``.
    """

    name: str
    rooms: Sequence[str]
    received: dict[str, list[Delivery]] = field(default_factory=dict)
    first: dict[str, Position] = field(default_factory=dict)
    last: dict[str, Position] = field(default_factory=dict)
    joins: list[dict[str, Any]] = field(default_factory=list)
    resyncs: list[dict[str, Any]] = field(default_factory=list)
    resynced_at: dict[str, list[int]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    ws: aiohttp.ClientWebSocketResponse | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _refs: itertools.count[int] = field(default_factory=itertools.count)

    async def connect(self, session: aiohttp.ClientSession, url: str) -> None:
        """Open ``url`` (a ``/ws`` URL; ``?v=2`` is added) and start reading."""
        self.url = url
        self.closed = asyncio.Event()
        self.ws = await session.ws_connect(
            f"{url}?v=2", autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        )
        hello = json.loads((await self.ws.receive(timeout=10)).data)
        assert hello["type"] == "connected", hello
        assert hello.get("v") == 2, hello
        self._reader = asyncio.create_task(self._read(self.ws))

    async def join_all(self, *, since: bool = False, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Join every room (with ``since`` = the last position when asked); the answers."""
        answers = []
        for room in self.rooms:
            message: dict[str, Any] = {"type": "join", "room": room}
            if since and room in self.last:
                offset, epoch = self.last[room]
                message["since"] = {"offset": offset, "epoch": epoch}
            answers.append(await self.request(message, timeout))
        return answers

    async def request(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        assert self.ws is not None
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ref] = future
        try:
            await self.ws.send_str(json.dumps({**message, "ref": ref}))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(ref, None)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    def count(self, room: str) -> int:
        return len(self.received.get(room, ()))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._handle(orjson.loads(msg.data))
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))
            self.closed.set()

    def _handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message" and data.get("room") is not None and "offset" in data:
            room = data["room"]
            delivery = Delivery(data["offset"], data["epoch"], bool(data.get("replay")))
            self.received.setdefault(room, []).append(delivery)
            self.last[room] = (delivery.offset, delivery.epoch)
            return
        if kind == "joined":
            self.joins.append(data)
            if "offset" in data:
                position = (data["offset"], data["epoch"])
                self.first.setdefault(data["room"], position)
                if not data.get("recovered", True) or data["room"] not in self.last:
                    self.last[data["room"]] = position
        elif kind == "resync":
            self.resyncs.append(data)
            room = data["room"]
            self.resynced_at.setdefault(room, []).append(self.count(room))
            self.last[data["room"]] = (data["offset"], data["epoch"])
        elif kind == "error":
            self.errors.append(data)
        else:
            self.other.append(data)
        future = self._pending.get(data.get("ref", -1))
        if future is not None and not future.done():
            future.set_result(data)


class PublishFailed(Exception):
    """A publish could not be acknowledged by any node before its deadline."""


@dataclass
class _PubConn:
    url: str
    ws: aiohttp.ClientWebSocketResponse
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    alive: bool = True
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    data = orjson.loads(msg.data)
                    future = self.pending.get(data.get("ref", -1))
                    if future is not None and not future.done():
                        future.set_result(data)
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.alive = False
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("closed"))


@dataclass
class Publisher:
    """Publishes ``broadcast`` messages with unique ids through one v2 connection per node.

    A publish goes through node ``n % nodes`` first; on an error answer (``unavailable``),
    a timeout or a closed connection it is sent again, with the same id, through the
    next live node, until acknowledged. After an ``unavailable`` it behaves like a
    considerate client: one publish at a time probes, every 0.2 s, until one is
    acknowledged. A connection the hub closed with 1008 (too many error replies) is
    opened again. ``acks[id]`` keeps every ack received for it; ``close_codes`` how each
    connection that closed ended.
    """

    rooms: Sequence[str]
    ack_timeout: float = 2.0
    deadline: float = 30.0
    conns: list[_PubConn] = field(default_factory=list)
    acks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    degraded: bool = False
    close_codes: list[int | None] = field(default_factory=list)
    slowest: tuple[float, str, int] = (0.0, "", 0)
    """The longest a publish took until acknowledged: seconds, its id, its attempts."""
    _watchers: list[asyncio.Task[None]] = field(default_factory=list)
    _gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    _refs: itertools.count[int] = field(default_factory=itertools.count)

    async def connect(self, session: aiohttp.ClientSession, urls: Sequence[str]) -> None:
        for url in urls:
            self.conns.append(await self._open(session, url))
            self._watchers.append(asyncio.create_task(self._watch(session, len(self.conns) - 1)))

    async def _open(self, session: aiohttp.ClientSession, url: str) -> _PubConn:
        ws = await session.ws_connect(f"{url}?v=2")
        hello = json.loads((await ws.receive(timeout=10)).data)
        assert hello["type"] == "connected", hello
        conn = _PubConn(url, ws)
        conn.reader = asyncio.create_task(conn.read())
        for room in self.rooms:
            for _ in range(100):  # a join during an outage answers unavailable: again
                answer = await self._send(conn, {"type": "join", "room": room}, 10.0)
                if answer["type"] == "joined":
                    break
                await asyncio.sleep(0.2)
            assert answer["type"] == "joined", answer
        return conn

    async def _watch(self, session: aiohttp.ClientSession, index: int) -> None:
        """Open the connection again when the hub closed it with 1008 (its error budget);
        a node that died (no close code) stays dead."""
        while True:
            conn = self.conns[index]
            assert conn.reader is not None
            await asyncio.wait([conn.reader])  # never cancels the reader with the watcher
            self.close_codes.append(conn.ws.close_code)
            if conn.ws.close_code != 1008:
                return
            self.conns[index] = await self._open(session, conn.url)

    @property
    def duplicates(self) -> int:
        """Acks that said ``duplicate``: a retry of a publish that had gone through."""
        return sum(1 for acks in self.acks.values() for ack in acks if ack.get("duplicate"))

    async def publish(self, publish_id: str, room: str, payload: Any, first: int) -> dict[str, Any]:
        """Publish until some node acknowledges; the ack."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        give_up = started + self.deadline
        message = {"type": "broadcast", "room": room, "payload": payload, "id": publish_id}
        for attempt in itertools.count():
            if loop.time() > give_up:
                raise PublishFailed(
                    f"{publish_id}: errors {self.errors}, connections closed {self.close_codes}, "
                    f"watchers {[t.exception() if t.done() else None for t in self._watchers]}"
                )
            conn = self._pick(first + attempt)
            if conn is None:
                await asyncio.sleep(0.05)
                continue
            if attempt:
                self.retries += 1
            if self.degraded:
                async with self._gate:
                    conn = self._pick(first + attempt)  # the one chosen may have closed since
                    if self.degraded and conn is not None:
                        answer = await self._attempt(conn, message)
                        if answer is None or answer["type"] != "ack":
                            await asyncio.sleep(0.2)
                            continue
                        self.degraded = False
                        self.acks.setdefault(publish_id, []).append(answer)
                        took = (loop.time() - started, publish_id, attempt + 1)
                        self.slowest = max(self.slowest, took)
                        return answer
            answer = await self._attempt(conn, message)
            if answer is not None and answer["type"] == "ack":
                self.acks.setdefault(publish_id, []).append(answer)
                self.slowest = max(self.slowest, (loop.time() - started, publish_id, attempt + 1))
                return answer
            if answer is not None:
                self.degraded = True
            else:
                await asyncio.sleep(0.05)  # a closing socket fails at once: let it close
        raise AssertionError("unreachable")

    def _pick(self, n: int) -> _PubConn | None:
        live = [c for c in self.conns if c.alive and not c.ws.closed]
        return live[n % len(live)] if live else None

    async def close(self) -> None:
        for task in self._watchers:
            task.cancel()
        for conn in self.conns:
            await conn.ws.close()
            if conn.reader is not None:
                await conn.reader

    async def _attempt(self, conn: _PubConn, message: dict[str, Any]) -> dict[str, Any] | None:
        """One try: the answer, or None when the connection failed or the ack timed out."""
        try:
            answer = await self._send(conn, message, self.ack_timeout)
        except (ConnectionError, TimeoutError, aiohttp.ClientError) as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return None
        if answer["type"] != "ack":
            code = str(answer.get("code"))
            self.errors[code] = self.errors.get(code, 0) + 1
        return answer

    async def _send(
        self, conn: _PubConn, message: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        conn.pending[ref] = future
        try:
            await conn.ws.send_str(json.dumps({**message, "ref": ref}))
            return await asyncio.wait_for(future, timeout)
        finally:
            conn.pending.pop(ref, None)


async def publish_at_rate(
    publisher: Publisher, rate: float, stop: asyncio.Event, prefix: str = "p"
) -> list[str]:
    """Publish ``rate`` messages a second, spread over the rooms, until ``stop``; wait for
    every ack (each publish retries on its own, so a slow one never holds the pace back).
    The ids published, in order."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[dict[str, Any]]] = []
    ids: list[str] = []
    start = loop.time()
    for n in itertools.count():
        if stop.is_set():
            break
        publish_id = f"{prefix}{n}"
        room = publisher.rooms[n % len(publisher.rooms)]
        ids.append(publish_id)
        tasks.append(asyncio.create_task(publisher.publish(publish_id, room, {"n": n}, n)))
        delay = start + (n + 1) / rate - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    await asyncio.gather(*tasks)
    return ids
