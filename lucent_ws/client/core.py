"""The Python client: one connection kept up, rooms re-joined from their position."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp
from yarl import URL

from ..errors import ConnectionClosed, Disconnected, RequestFailed, RequestTimeout
from .policy import ABNORMAL, AUTH_CLASS, Backoff, drain_delay, is_final
from .rooms import Room, Stream
from .state import Message

__all__ = ["Client", "ClientEvent", "TokenGetter"]

logger = logging.getLogger("lucent_ws.client")

TokenGetter = Callable[[], "str | Awaitable[str | None] | None"]
"""``get_token()``, sync or async: a bearer token, or None for none."""
EventKind = Literal["connecting", "connected", "disconnected", "recovered", "closed", "left"]
State = Literal["idle", "connecting", "connected", "closed"]


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A change of the client's state, given to every listener.

    - ``connecting``: an attempt starts after ``delay`` seconds (``attempt`` 0 first)
    - ``connected``: ``id`` is the connection id
    - ``disconnected``: ``code`` is the close code (1006: no close frame) or HTTP status
    - ``recovered``: after a re-join with ``since``; ``recovered`` False means the
      missed messages are lost (refetch your state), with the server's ``reason``
    - ``left``: the server refused a re-join (``reason`` is the error code)
    - ``closed``: final; ``code`` says why (1000 after :meth:`Client.close`)
    """

    kind: EventKind
    code: int | None = None
    room: str | None = None
    recovered: bool | None = None
    missed: int | None = None
    reason: str | None = None
    delay: float | None = None
    attempt: int | None = None
    id: str | None = None


Listener = Callable[[ClientEvent], object]


class Client:
    """A protocol v2 client that stays connected: ``async with Client(url) as client``.

    ``url`` is the hub's WebSocket URL (``ws://host:8080/ws``; ``v=2`` is added).
    ``get_token`` (sync or async) supplies a bearer token, sent as
    ``Authorization: Bearer``; it is asked at the first connection and once more
    after a 401, 403 or 1008 before the client gives up. Requests time out after
    ``request_timeout`` seconds by default. ``on_event`` (or :meth:`add_listener`)
    receives every :class:`ClientEvent`.
    """

    def __init__(
        self,
        url: str,
        *,
        get_token: TokenGetter | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        backoff: Backoff | None = None,
        on_event: Listener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = str(URL(url).update_query(v="2"))
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
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._refs = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str | None]] = {}
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

    async def wait_closed(self) -> int | None:
        """Wait until the client stopped for good; the close code."""
        await self._stopped.wait()
        return self.close_code

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until connected (raises ``ConnectionClosed`` if the client stopped)."""
        await self._until_ready(self.connect_timeout if timeout is None else timeout)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`ClientEvent`; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

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
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[ref] = (future, publish_id)
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
            self._pending.pop(ref, None)

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
            self._emit(ClientEvent("connecting", delay=delay, attempt=self.backoff.attempt))
            if delay:
                await asyncio.sleep(delay)
            code: int | None
            try:
                ws = await self._connect()
            except aiohttp.WSServerHandshakeError as exc:
                code = exc.status
            except (aiohttp.ClientError, OSError, TimeoutError):
                code = ABNORMAL
            else:
                started = loop.time()
                code, hint = await self._serve(ws)
                self.backoff.connected_for(loop.time() - started)
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

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        if self._token is None and self._get_token is not None:
            token = self._get_token()
            self._token = await token if inspect.isawaitable(token) else token
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        return await self._session.ws_connect(
            self.url,
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
            data = _json(hello)
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
            self._emit(ClientEvent("connected", id=self.id))
            if self.rooms:
                self._rejoin = asyncio.get_running_loop().create_task(self._rejoin_all())
            while True:
                try:
                    msg = await ws.receive(timeout=watchdog)
                except TimeoutError:
                    logger.info("nothing received for %.1f s; reconnecting", watchdog)
                    return ABNORMAL, None
                if msg.type is aiohttp.WSMsgType.TEXT:
                    frame = _json(msg)
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
            self._fail_pending(Disconnected, "disconnected before the answer")
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
                await self._join(room, None)
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
        if kind == "message":
            self._on_message(frame)
        elif kind == "ping":
            task = asyncio.get_running_loop().create_task(ws.send_str('{"type":"pong"}'))
            task.add_done_callback(_ignore_result)
        elif kind == "reconnect":
            within = frame.get("within")
            return float(within) if isinstance(within, (int, float)) else None
        elif kind == "joined":
            room = self.rooms.get(str(frame.get("room")))
            if room is not None:
                recovery = room.position.on_joined(frame, room.asked_since)
                room.joined = room.ever_joined = True
                if recovery is not None:
                    self._emit(
                        ClientEvent(
                            "recovered",
                            room=room.name,
                            recovered=recovery.recovered,
                            missed=recovery.missed,
                            reason=recovery.reason,
                        )
                    )
        elif kind in ("presence", "presence_diff"):
            # Applied here, in arrival order: a diff right behind a snapshot stays applied.
            room = self.rooms.get(str(frame.get("room")))
            if room is not None:
                if kind == "presence":
                    room.presence.reset(frame)
                else:
                    room.presence.apply(frame)
        ref = frame.get("ref")
        if isinstance(ref, int) and ref in self._pending:
            future, publish_id = self._pending.pop(ref)
            if future.done():
                return None
            if kind == "error":
                future.set_exception(
                    RequestFailed(
                        str(frame.get("code")), str(frame.get("message")), publish_id=publish_id
                    )
                )
            else:
                future.set_result(frame)
        return None

    def _on_message(self, frame: dict[str, Any]) -> None:
        name = frame.get("room")
        epoch, offset = frame.get("epoch"), frame.get("offset")
        message = Message(
            room=name if isinstance(name, str) else None,
            payload=frame.get("payload"),
            sender=frame.get("from") if isinstance(frame.get("from"), str) else None,
            offset=offset if isinstance(offset, int) else None,
            epoch=epoch if isinstance(epoch, str) else None,
            replay=frame.get("replay") is True,
        )
        if message.room is None:
            self.direct._put(message)
            return
        room = self.rooms.get(message.room)
        if room is not None and room.position.accept(epoch, offset):
            room._put(message)

    # --- state -----------------------------------------------------------------------

    def _fail_pending(self, error: type[Disconnected | ConnectionClosed], text: str) -> None:
        pending, self._pending = self._pending, {}
        for future, publish_id in pending.values():
            if not future.done():
                exc = (
                    Disconnected(text, publish_id=publish_id)
                    if error is Disconnected
                    else ConnectionClosed(text, self.close_code)
                )
                future.set_exception(exc)

    def _finish(self, code: int | None, reason: str) -> None:
        if self.state == "closed":
            return
        self.close_code = code
        self._set_state("closed")
        self._fail_pending(ConnectionClosed, f"the client stopped: {reason}")
        for room in self.rooms.values():
            room._end()
        self.direct._end()
        self._stopped.set()
        self._emit(ClientEvent("closed", code=code, reason=reason))

    def _set_state(self, state: State) -> None:
        self.state = state

    def _emit(self, event: ClientEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("client event listener failed")


def _json(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
