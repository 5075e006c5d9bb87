"""The Python client: one connection kept up, rooms re-joined from their position."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import random
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

import aiohttp

from ..errors import ConnectionClosed, Disconnected, RequestFailed, RequestTimeout
from .endpoints import Endpoints, UrlSource
from .events import ClientEvent, Listener, Listeners, TokenGetter
from .policy import ABNORMAL, AUTH_CLASS, UNAVAILABLE, Backoff, drain_delay, is_final
from .requests import PendingRequests
from .rooms import Room, Stream
from .routing import parse_text, route

__all__ = ["Client"]

logger = logging.getLogger("lucent_ws.client")

State = Literal["idle", "connecting", "connected", "closed"]


class Client:
    """A protocol v2 client that stays connected: ``async with Client(url) as client``.

    ``url`` is the hub's WebSocket URL (``ws://host:8080/ws``; ``v=2`` is added), a
    list of the cluster's node URLs (each attempt after a failure or a lost
    connection goes to the next one: failover when a node dies), or a callback
    ``url()`` (sync or async) asked before every attempt.
    ``get_token`` (sync or async) supplies a bearer token, sent as
    ``Authorization: Bearer``; it is asked at the first connection and once more
    after a 401, 403 or 1008 before the client gives up. Requests time out after
    ``request_timeout`` seconds by default. ``on_event`` (or :meth:`add_listener`)
    receives every :class:`ClientEvent`.
    """

    def __init__(
        self,
        url: UrlSource,
        *,
        get_token: TokenGetter | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
        on_event: Listener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints = Endpoints(url)
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.backoff = backoff or Backoff()
        self.rooms: dict[str, Room] = {}
        """Rooms joined (and re-joined after every reconnect), by name."""
        self.direct = Stream()
        """Messages sent to this connection alone (``send_to``, ``broadcast_all``)."""
        self.id: str | None = None
        """The current connection's id."""
        self.state: State = "idle"
        self.close_code: int | None = None
        """Why the client stopped, once :attr:`state` is ``closed``."""
        self._get_token = get_token
        self._token: str | None = None
        self._fresh_token_asked = False
        self._session = session
        self._own_session = session is None
        self._rng = rng
        self._listeners = Listeners(on_event)
        self._pending = PendingRequests()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rejoin: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting in the background (``async with`` does it)."""
        if self._task is None and self.state != "closed":
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Close the connection (1000) and stop for good; rooms' iterations end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._finish(1000, "closed by the application")
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def url(self) -> str | None:
        """The URL of the current (or last) connection attempt."""
        return self.endpoints.current

    async def wait_closed(self) -> int | None:
        """Wait until the client stopped for good; the close code."""
        await self._stopped.wait()
        return self.close_code

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until connected (raises ``ConnectionClosed`` if the client stopped)."""
        await self._until_ready(self.connect_timeout if timeout is None else timeout)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`ClientEvent`; returns a remover."""
        return self._listeners.add(listener)

    # --- rooms and requests ----------------------------------------------------------

    async def join(
        self, room: str, *, presence: bool = False, timeout: float | None = None
    ) -> Room:
        """Join ``room`` (re-joined after every reconnect); with ``presence``, track members."""
        existing = self.rooms.get(room)
        if existing is not None:
            return existing
        joined = self.rooms[room] = Room(self, room, presence=presence)
        try:
            await self._join(joined, timeout)
        except BaseException:
            if self.rooms.get(room) is joined:
                del self.rooms[room]
            joined._end()
            raise
        return joined

    async def leave(self, room: str, *, timeout: float | None = None) -> None:
        """Leave ``room``: no more re-joins; its iteration ends."""
        left = self.rooms.pop(room, None)
        if left is None:
            return
        left._end()
        if self._ws is not None:
            await self.call({"type": "leave", "room": room}, timeout)

    async def request(
        self, type: str, data: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Send an application message (``@hub.message(type)``); its reply's ``data``."""
        reply = await self.call({**(data or {}), "type": type}, timeout)
        return reply.get("data")

    async def call(
        self,
        frame: dict[str, Any],
        timeout: float | None,
        *,
        publish_id: str | None = None,
    ) -> dict[str, Any]:
        """Send ``frame`` with a new ``ref``; the reply frame, or an error.

        Waits for a connection within the timeout; fails with
        :class:`~lucent_ws.errors.RequestTimeout`, :class:`~lucent_ws.errors.Disconnected`
        (never resent) or :class:`~lucent_ws.errors.RequestFailed`.
        """
        limit = self.request_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        await self._until_ready(limit, publish_id)
        ws = self._ws
        if ws is None:
            raise Disconnected("not connected", publish_id=publish_id)
        ref, future = self._pending.open(publish_id)
        try:
            try:
                await ws.send_str(json.dumps({**frame, "ref": ref}))
            except (ConnectionError, RuntimeError) as exc:
                raise Disconnected(f"send failed: {exc}", publish_id=publish_id) from None
            async with asyncio.timeout_at(deadline):
                return await future
        except TimeoutError:
            raise RequestTimeout(
                f"no answer to {frame.get('type')!r} within {limit} s", publish_id=publish_id
            ) from None
        finally:
            self._pending.forget(ref)

    async def _until_ready(self, limit: float, publish_id: str | None = None) -> None:
        if self._ready.is_set():
            return
        if self.state == "closed":
            raise ConnectionClosed("the client is closed", self.close_code)
        self.start()
        ready = asyncio.ensure_future(self._ready.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((ready, stopped), timeout=limit, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
            stopped.cancel()
        if self._stopped.is_set():
            raise ConnectionClosed("the client is closed", self.close_code)
        if not self._ready.is_set():
            raise RequestTimeout(f"not connected within {limit} s", publish_id=publish_id)

    async def _join(self, room: Room, timeout: float | None) -> None:
        frame: dict[str, Any] = {"type": "join", "room": room.name}
        since = room.position.since()
        if since is not None:
            frame["since"] = since
        room.asked_since = since is not None
        await self.call(frame, timeout)
        if room.wants_presence:
            with contextlib.suppress(RequestFailed):
                await room.refresh_presence(timeout=timeout)

    # --- the connection loop ---------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay, hint = 0.0, None
        while True:
            self._set_state("connecting")
            url = await self.endpoints.next()
            event = ClientEvent("connecting", delay=delay, attempt=self.backoff.attempt, url=url)
            self._emit(event)
            if delay:
                await asyncio.sleep(delay)
            code: int | None
            try:
                ws = await self._connect(url)
            except aiohttp.WSServerHandshakeError as exc:
                code = exc.status
            except (aiohttp.ClientError, OSError, TimeoutError):
                code = ABNORMAL
            else:
                started = loop.time()
                code, hint = await self._serve(ws)
                self.backoff.connected_for(loop.time() - started)
            self.endpoints.rotate()
            if code in AUTH_CLASS and self._get_token is not None and not self._fresh_token_asked:
                self._fresh_token_asked = True
                self._token = None  # ask get_token again, then try at once
                self._emit(ClientEvent("disconnected", code=code))
                delay = 0.0
                continue
            if is_final(code):
                self._finish(code, "refused" if code in (400, 401, 403) else "closed by the server")
                return
            self._emit(ClientEvent("disconnected", code=code))
            if hint is not None:
                delay, hint = drain_delay(hint, self._rng), None
            else:
                delay = self.backoff.next_delay(self._rng)

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if self._token is None and self._get_token is not None:
            token = self._get_token()
            self._token = await token if inspect.isawaitable(token) else token
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        return await self._session.ws_connect(
            url,
            headers=headers,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
            max_msg_size=0,
        )

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int, float | None]:
        """Read until the connection ends; its close code and any drain hint."""
        hint: float | None = None
        try:
            hello = await ws.receive(timeout=self.connect_timeout)
            if hello.type is aiohttp.WSMsgType.CLOSE:
                return int(hello.data), None
            data = parse_text(hello)
            if data is None or data.get("type") != "connected":
                return ABNORMAL, None
            heartbeat = data.get("heartbeat")
            watchdog = None
            if isinstance(heartbeat, dict):
                watchdog = float(heartbeat.get("interval", 30)) + float(
                    heartbeat.get("timeout", 10)
                )
            self._ws = ws
            self.id = data.get("id") if isinstance(data.get("id"), str) else None
            self._fresh_token_asked = False
            self._set_state("connected")
            self._ready.set()
            self._emit(ClientEvent("connected", id=self.id, url=self.url))
            if self.rooms:
                self._rejoin = asyncio.get_running_loop().create_task(self._rejoin_all())
            while True:
                try:
                    msg = await ws.receive(timeout=watchdog)
                except TimeoutError:
                    logger.info("nothing received for %.1f s; reconnecting", watchdog)
                    return ABNORMAL, None
                if msg.type is aiohttp.WSMsgType.TEXT:
                    frame = parse_text(msg)
                    if frame is not None:
                        within = self._on_frame(ws, frame)
                        hint = within if within is not None else hint
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    return int(msg.data), hint
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    code = ws.close_code
                    return (code if code and code != 1000 else ABNORMAL), hint
        except TimeoutError:
            return ABNORMAL, None
        finally:
            self._ws = None
            self._ready.clear()
            self._pending.fail_all("disconnected before the answer")
            if self._rejoin is not None:
                self._rejoin.cancel()
                self._rejoin = None
            for room in self.rooms.values():
                room.joined = False
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 2.0)

    async def _rejoin_all(self) -> None:
        async def rejoin(room: Room) -> None:
            try:
                for attempt in itertools.count():
                    try:
                        await self._join(room, None)
                        return
                    except RequestFailed as exc:
                        if exc.code != UNAVAILABLE:
                            raise
                    # The hub cannot serve the room's history now (its broker is away):
                    # the room stays, and this connection asks again after a backoff.
                    window = self.backoff.window(attempt)
                    await asyncio.sleep((self._rng or random).uniform(0.0, window))
            except RequestFailed as exc:  # e.g. forbidden now: the room is gone
                if self.rooms.get(room.name) is room:
                    del self.rooms[room.name]
                room._end()
                self._emit(ClientEvent("left", room=room.name, reason=exc.code))
            except (Disconnected, RequestTimeout, ConnectionClosed):
                pass  # the next connection tries again

        # Rooms never joined yet are being joined by their own join() call.
        rooms = [room for room in self.rooms.values() if room.ever_joined]
        await asyncio.gather(*(rejoin(room) for room in rooms))

    def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> float | None:
        """Handle one frame in arrival order; a drain hint's window, if it was one."""
        kind = frame.get("type")
        if kind == "ping":
            task = asyncio.get_running_loop().create_task(ws.send_str('{"type":"pong"}'))
            task.add_done_callback(_ignore_result)
        elif kind == "reconnect":
            within = frame.get("within")
            return float(within) if isinstance(within, (int, float)) else None
        else:
            route(frame, self.rooms, self.direct, self._emit)
        self._pending.answer(frame)
        return None

    # --- state -----------------------------------------------------------------------

    def _finish(self, code: int | None, reason: str) -> None:
        if self.state == "closed":
            return
        self.close_code = code
        self._set_state("closed")
        self._pending.fail_all(f"the client stopped: {reason}", closed_code=code, final=True)
        for room in self.rooms.values():
            room._end()
        self.direct._end()
        self._stopped.set()
        self._emit(ClientEvent("closed", code=code, reason=reason))

    def _set_state(self, state: State) -> None:
        self.state = state

    def _emit(self, event: ClientEvent) -> None:
        self._listeners.emit(event)


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
