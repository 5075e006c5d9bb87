"""The hub: connections, rooms, metadata, fan-out, heartbeat and stats.

Pure Python on asyncio, with no aiohttp import. The I/O layer registers each
accepted connection with :meth:`WebSocketManager.connect`, handing over the
transport to write frames to and a coroutine function that closes the socket
gracefully. Everything else (host code, hooks, the admin API) uses the public
methods, which mirror the Lucent ``wsManager`` in snake_case.

Outbound path: a payload is encoded once and framed once per broadcast; each
recipient gets a reference to the same frame appended to its pending list, and a
loop callback writes each connection's pending frames with a single
``transport.write``, at most ``FLUSH_SLICE`` connections per tick. Nothing awaits a
peer. A peer whose unsent bytes
exceed its buffer limit is evicted (close code 1013).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NotRequired, Protocol, TypedDict

from . import jsoncodec, protocol
from .config import HeartbeatConfig
from .frames import PING_FRAME, text_frame

if TYPE_CHECKING:
    from .broker import Broker, NodeStats, RemoteConnection

__all__ = [
    "CloseCode",
    "Connection",
    "Counters",
    "EvictionReason",
    "Stats",
    "Transport",
    "WebSocketManager",
]

logger = logging.getLogger("lucent_ws.manager")

_NO_EXCLUDE: Final[frozenset[str]] = frozenset()
_NO_LIMIT: Final = 1 << 62
FLUSH_SLICE: Final = 32
"""Connections written per loop tick; more wait for the next tick.

Small on purpose: between slices the loop reads new messages, and a broadcast read
while a large room is being written joins the frames still pending for the members
not yet written, so more frames share each write.
"""
HEARTBEAT_TICK: Final = 0.02
"""Seconds between heartbeat slices (at most; a tenth of the interval when shorter)."""
_HEARTBEAT_FRAME: Final = text_frame(protocol.PING) + PING_FRAME


class CloseCode:
    """WebSocket close codes lucent_ws uses."""

    NORMAL: Final = 1000
    GOING_AWAY: Final = 1001
    UNSUPPORTED_DATA: Final = 1003
    INVALID_DATA: Final = 1007
    POLICY_VIOLATION: Final = 1008
    MESSAGE_TOO_BIG: Final = 1009
    INTERNAL_ERROR: Final = 1011
    TRY_AGAIN_LATER: Final = 1013
    HEARTBEAT_TIMEOUT: Final = 4000
    DISCONNECTED: Final = 4001


class EvictionReason:
    """Labels of :attr:`Counters.evictions`."""

    HEARTBEAT: Final = "heartbeat"
    SLOW_CONSUMER: Final = "slow_consumer"
    KICK: Final = "kick"
    RATE_LIMIT: Final = "rate_limit"
    ABUSE: Final = "abuse"
    EXPIRED: Final = "expired"
    INTERNAL_ERROR: Final = "internal_error"

    ALL: Final = (HEARTBEAT, SLOW_CONSUMER, KICK, RATE_LIMIT, ABUSE, EXPIRED, INTERNAL_ERROR)


class Transport(Protocol):
    """The part of an :class:`asyncio.Transport` the manager writes to."""

    def write(self, data: bytes) -> None:
        """Write bytes without blocking."""

    def get_write_buffer_size(self) -> int:
        """Bytes accepted but not yet sent."""

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""

    def abort(self) -> None:
        """Close at once, discarding unsent data."""


CloseFunction = Callable[[int, str], Awaitable[object]]
"""``close(code, message)``: the I/O layer's graceful WebSocket close."""


class Connection:
    """One client connection as the manager sees it.

    Hooks receive it: ``id`` (a UUID4 string), ``request`` (the handshake
    request, an ``aiohttp.web.Request`` under the aiohttp adapter), ``meta``
    (the metadata mapping, also reachable through ``get_meta``/``set_meta``)
    and ``rooms`` (read-only by convention; use the manager to change it).
    """

    __slots__ = (
        "_close",
        "_max_buffer",
        "_pending",
        "_summed",
        "_summed_bytes",
        "_transport",
        "closed",
        "connected_at",
        "id",
        "last_seen",
        "meta",
        "request",
        "rooms",
    )

    def __init__(
        self,
        conn_id: str,
        transport: Transport,
        close: CloseFunction,
        *,
        request: Any = None,
        meta: Mapping[str, Any] | None = None,
        max_buffer: int,
        now: float,
    ) -> None:
        self.id = conn_id
        self.request = request
        self.meta: dict[str, Any] = dict(meta or {})
        self.rooms: set[str] = set()
        self.connected_at = now
        self.last_seen = now
        self.closed = False
        self._transport = transport
        self._close = close
        self._max_buffer = max_buffer
        # Frames queued since the last write. One list for the connection's lifetime,
        # emptied after each write: a new list per recipient per broadcast made full
        # garbage collections frequent and long.
        self._pending: list[bytes] = []
        # How many of the pending frames a burst check has added up, and their bytes.
        self._summed = 0
        self._summed_bytes = 0

    def __repr__(self) -> str:
        return f"<Connection {self.id} rooms={len(self.rooms)} closed={self.closed}>"


class Counters:
    """Monotonic counters since the manager was created."""

    __slots__ = ("bytes_out", "evictions", "handshake_refusals", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.evictions: dict[str, int] = dict.fromkeys(EvictionReason.ALL, 0)
        self.handshake_refusals: dict[str, int] = {}


class Stats(TypedDict):
    """The JSON form of :meth:`WebSocketManager.get_stats`."""

    connections: int
    rooms: dict[str, int]
    heartbeatActive: bool
    messagesIn: int
    messagesOut: int
    bytesOut: int
    evictions: dict[str, int]
    handshakeRefusals: dict[str, int]
    uptime: float
    node: NotRequired[str]
    broker: NotRequired[str]
    undelivered: NotRequired[int]
    nodes: NotRequired[dict[str, NodeStats]]


class WebSocketManager:
    """Rooms, direct messages, broadcasts, metadata, stats and heartbeat.

    Send methods never block and never raise for a dead or slow peer; they
    return what they queued. They must be called on the event loop thread.
    """

    def __init__(
        self,
        *,
        heartbeat: HeartbeatConfig | None = HeartbeatConfig(),  # noqa: B008 - frozen
        close_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connections: dict[str, Connection] = {}
        self._rooms: dict[str, dict[str, Connection]] = {}
        self._dirty: deque[Connection] = deque()
        self._buffer_limits: dict[int, int] = {}  # outbound limit -> live connections
        self._min_buffer = _NO_LIMIT  # the smallest outbound limit of a live connection
        self._flush_handle: asyncio.Handle | None = None
        self._heartbeat_config = heartbeat
        self._heartbeat_configured = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._close_tasks: set[asyncio.Task[None]] = set()
        self._clock = clock
        self._started = clock()
        self.close_timeout = close_timeout
        self.counters = Counters()
        self._broker: Broker | None = None

    # --- scale-out -----------------------------------------------------------------

    @property
    def broker(self) -> Broker | None:
        """The broker reaching other nodes, or None (single process, the default)."""
        return self._broker

    def attach_broker(self, broker: Broker | None) -> None:
        """Reach connections on other nodes through ``broker`` (None: this node only).

        Brokers attach themselves when they start; see :mod:`lucent_ws.broker`.
        """
        self._broker = broker

    def get_remote_connection(self, conn_id: str) -> RemoteConnection | None:
        """The connection with this id on another node (id, node, rooms, meta), or None."""
        broker = self._broker
        return broker.view.connection(conn_id) if broker is not None else None

    # --- connections (used by the I/O layer) -----------------------------------

    def connect(
        self,
        transport: Transport,
        close: CloseFunction,
        *,
        request: Any = None,
        meta: Mapping[str, Any] | None = None,
        max_outbound_buffer: int = 1024 * 1024,
    ) -> Connection:
        """Register a new connection, queue its ``connected`` message and return it.

        Starts the heartbeat if it is configured and not running yet.
        """
        conn_id = str(uuid.uuid4())
        self._count_limit(max_outbound_buffer, 1)
        conn = Connection(
            conn_id,
            transport,
            close,
            request=request,
            meta=meta,
            max_buffer=max_outbound_buffer,
            now=self._clock(),
        )
        self._queue(conn, text_frame(protocol.encode_connected(conn_id)))
        self._connections[conn_id] = conn
        if self._broker is not None:
            self._broker.connection_changed(conn_id)
        if self._heartbeat_config is not None and not self.heartbeat_active:
            self.start_heartbeat()
        return conn

    def remove(self, conn_id: str) -> bool:
        """Forget a connection: leave all its rooms and drop its metadata.

        Does not close the socket (see :meth:`disconnect`). Returns False if the
        id was not live. A removed connection can never rejoin a room.
        """
        conn = self._connections.pop(conn_id, None)
        if conn is None:
            return False
        conn.closed = True
        for room in conn.rooms:
            members = self._rooms.get(room)
            if members is not None:
                members.pop(conn_id, None)
                if not members:
                    del self._rooms[room]
        conn.rooms.clear()
        conn.meta.clear()
        conn._pending.clear()
        conn._summed = conn._summed_bytes = 0
        self._count_limit(conn._max_buffer, -1)
        if self._broker is not None:
            self._broker.connection_changed(conn_id)
        return True

    def _count_limit(self, limit: int, delta: int) -> None:
        limits = self._buffer_limits
        count = limits.get(limit, 0) + delta
        if count:
            limits[limit] = count
        else:
            del limits[limit]
        self._min_buffer = min(limits, default=_NO_LIMIT)

    def get_connection(self, conn_id: str) -> Connection | None:
        """The live connection with this id, or None."""
        return self._connections.get(conn_id)

    def connection_ids(self) -> list[str]:
        """Ids of every live connection."""
        return list(self._connections)

    def __len__(self) -> int:
        return len(self._connections)

    def now(self) -> float:
        """The manager's clock: the time base of ``connected_at`` and ``last_seen``."""
        return self._clock()

    def touch(self, conn: Connection) -> None:
        """Record that something arrived from ``conn`` (heartbeat liveness)."""
        conn.last_seen = self._clock()

    # --- rooms -------------------------------------------------------------------

    def join_room(self, conn_id: str, room: str) -> bool:
        """Add a connection to a room; True when membership changed.

        False for an unknown (or removed) connection or one already in the room.
        """
        conn = self._connections.get(conn_id)
        if conn is None or room in conn.rooms:
            return False
        members = self._rooms.get(room)
        if members is None:
            members = self._rooms[room] = {}
        members[conn_id] = conn
        conn.rooms.add(room)
        if self._broker is not None:
            self._broker.connection_changed(conn_id)
        return True

    def leave_room(self, conn_id: str, room: str) -> bool:
        """Remove a connection from a room; True when membership changed.

        The room disappears with its last member.
        """
        conn = self._connections.get(conn_id)
        if conn is None or room not in conn.rooms:
            return False
        conn.rooms.discard(room)
        members = self._rooms[room]
        del members[conn_id]
        if not members:
            del self._rooms[room]
        if self._broker is not None:
            self._broker.connection_changed(conn_id)
        return True

    def get_room_members(self, room: str) -> list[str]:
        """Ids of the connections in ``room`` (empty for an unknown room), cluster-wide."""
        members = list(self._rooms.get(room, ()))
        if self._broker is not None:
            members.extend(self._broker.view.room_members(room))
        return members

    def get_connection_rooms(self, conn_id: str) -> list[str]:
        """Names of the rooms a connection is in (empty for an unknown id)."""
        conn = self._connections.get(conn_id)
        if conn is not None:
            return sorted(conn.rooms)
        remote = self.get_remote_connection(conn_id)
        return sorted(remote.rooms) if remote is not None else []

    def list_rooms(self) -> list[str]:
        """Names of every room with at least one member, cluster-wide."""
        if self._broker is None:
            return list(self._rooms)
        return list(dict.fromkeys([*self._rooms, *self._broker.view.room_sizes()]))

    def room_size(self, room: str) -> int:
        """Number of members of ``room`` (0 for an unknown room), cluster-wide."""
        members = self._rooms.get(room)
        size = len(members) if members is not None else 0
        if self._broker is not None:
            size += self._broker.view.room_size(room)
        return size

    # --- sending -------------------------------------------------------------------

    def send_to(self, conn_id: str, payload: Any) -> bool:
        """Queue ``payload`` for one connection; True if it is live.

        Raises :class:`TypeError` if ``payload`` is not JSON-serialisable.
        """
        conn = self._connections.get(conn_id)
        if conn is None:
            broker = self._broker
            if broker is None or broker.view.connection(conn_id) is None:
                return False
            return broker.publish_direct(conn_id, jsoncodec.dumps(payload))
        return self.send_encoded(conn, jsoncodec.dumps(payload))

    def send_encoded(self, conn: Connection, data: bytes) -> bool:
        """Queue already-encoded UTF-8 JSON for ``conn``; False if it is closed."""
        if conn.closed:
            return False
        frame = text_frame(data)
        self._queue(conn, frame)
        counters = self.counters
        counters.messages_out += 1
        counters.bytes_out += len(frame)
        return True

    def broadcast_to_room(self, room: str, payload: Any, *, exclude: Iterable[str] = ()) -> int:
        """Queue ``payload`` for every member of ``room`` not in ``exclude``.

        Returns the number of recipients. Raises :class:`TypeError` if
        ``payload`` is not JSON-serialisable.
        """
        return self.broadcast_encoded(room, jsoncodec.dumps(payload), exclude=exclude)

    def broadcast_encoded(self, room: str, data: bytes, *, exclude: Iterable[str] = ()) -> int:
        """Like :meth:`broadcast_to_room` for already-encoded UTF-8 JSON."""
        excluded = _as_set(exclude)
        count = self.deliver_to_room(room, data, excluded)
        if self._broker is not None:
            count += self._broker.publish_room(room, data, excluded)
        return count

    def broadcast_all(self, payload: Any, *, exclude: Iterable[str] = ()) -> int:
        """Queue ``payload`` for every connection not in ``exclude``; returns the count."""
        data = jsoncodec.dumps(payload)
        excluded = _as_set(exclude)
        count = self.deliver_to_all(data, excluded)
        if self._broker is not None:
            count += self._broker.publish_all(data, excluded)
        return count

    def deliver_to_room(self, room: str, data: bytes, exclude: Iterable[str] = ()) -> int:
        """Fan encoded JSON out to ``room``'s members on this node only.

        What a broker calls with what another node published.
        """
        members = self._rooms.get(room)
        if not members:
            return 0
        return self._fanout(members.values(), text_frame(data), _present(members, exclude))

    def deliver_to_all(self, data: bytes, exclude: Iterable[str] = ()) -> int:
        """Fan encoded JSON out to every connection on this node only."""
        if not self._connections:
            return 0
        connections = self._connections
        return self._fanout(connections.values(), text_frame(data), _present(connections, exclude))

    def _fanout(
        self, targets: Collection[Connection], frame: bytes, excluded: list[Connection]
    ) -> int:
        # The hot loop: per recipient one append and one length check; nothing is
        # allocated per recipient unless the frame could overflow the smallest limit.
        # Excluded targets get the frame too and lose it right after the loop, which
        # keeps the membership test out of the loop.
        dirty = self._dirty
        limit = self._min_buffer // len(frame)  # more frames than this may overflow
        suspects: list[Connection] | None = None
        for conn in targets:
            pending = conn._pending
            if not pending:
                dirty.append(conn)
            pending.append(frame)
            if len(pending) > limit:
                suspects = suspects or []
                suspects.append(conn)
        for conn in excluded:
            conn._pending.pop()
        count = len(targets) - len(excluded)
        if suspects:
            for conn in suspects:
                self._check_burst(conn)
        if dirty:
            self._schedule_flush()
        if count:
            counters = self.counters
            counters.messages_out += count
            counters.bytes_out += count * len(frame)
        return count

    def _queue(self, conn: Connection, frame: bytes) -> None:
        pending = conn._pending
        pending.append(frame)
        if len(pending) == 1:
            self._dirty.append(conn)
            self._schedule_flush()
        else:
            self._check_burst(conn)

    def _check_burst(self, conn: Connection) -> None:
        # More queued since the last write than the peer may have outstanding. A single
        # frame is always written; the write buffer's size decides after it. Only the
        # frames added since the previous check are summed.
        pending = conn._pending
        summed = conn._summed if conn._summed <= len(pending) else 0
        total = (conn._summed_bytes if summed else 0) + sum(
            map(len, itertools.islice(pending, summed, None))
        )
        conn._summed, conn._summed_bytes = len(pending), total
        if len(pending) > 1 and not conn.closed and total > conn._max_buffer:
            self._evict_slow(conn)

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # called outside the loop (scripts, unit tests): write now
            return
        self._flush_handle = loop.call_soon(self._flush_tick)

    def flush(self) -> None:
        """Write every connection's pending frames now, one write per connection."""
        dirty = self._dirty
        self._dirty = deque()
        self._write_pending(dirty)

    def _flush_tick(self) -> None:
        # Runs once per loop tick. A slice is bounded so that a broadcast to thousands
        # of connections cannot hold the loop for long; the rest goes out next tick.
        self._flush_handle = None
        dirty = self._dirty
        if len(dirty) > FLUSH_SLICE:
            popleft = dirty.popleft
            batch: Iterable[Connection] = [popleft() for _ in range(FLUSH_SLICE)]
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush_tick)
        else:
            batch = dirty
            self._dirty = deque()
        self._write_pending(batch)

    def _write_pending(self, dirty: Iterable[Connection]) -> None:
        for conn in dirty:
            pending = conn._pending
            if not pending or conn.closed:
                continue
            several = len(pending) > 1
            data = b"".join(pending) if several else pending[0]
            pending.clear()
            if conn._summed:
                conn._summed = conn._summed_bytes = 0
            if several and len(data) > conn._max_buffer:
                if not conn._transport.is_closing():
                    self._evict_slow(conn)  # a burst of frames of several sizes
                continue
            self._write(conn, data)

    def _evict_slow(self, conn: Connection) -> None:
        self.evict(
            conn.id, CloseCode.TRY_AGAIN_LATER, EvictionReason.SLOW_CONSUMER, "Outbound buffer full"
        )

    def _write(self, conn: Connection, data: bytes) -> None:
        """Write ``data`` to ``conn`` now; evict it if its write buffer is over the limit."""
        transport = conn._transport
        if transport.is_closing():
            return  # the peer is gone; its handler is about to remove it
        try:
            transport.write(data)
        except (OSError, RuntimeError):
            return
        if transport.get_write_buffer_size() > conn._max_buffer:
            self._evict_slow(conn)

    # --- metadata ------------------------------------------------------------------

    def set_meta(self, conn_id: str, key: str, value: Any) -> bool:
        """Store ``value`` under ``key`` for a connection; False for an unknown id."""
        conn = self._connections.get(conn_id)
        if conn is None:
            return False
        conn.meta[key] = value
        if self._broker is not None:
            self._broker.connection_changed(conn_id)
        return True

    def get_meta(self, conn_id: str, key: str, default: Any = None) -> Any:
        """Read a connection's metadata ``key`` (``default`` if unset or unknown id).

        With a broker, a connection on another node is read from its replica.
        """
        conn = self._connections.get(conn_id)
        if conn is None:
            remote = self.get_remote_connection(conn_id)
            return remote.meta.get(key, default) if remote is not None else default
        return conn.meta.get(key, default)

    # --- closing -------------------------------------------------------------------

    def disconnect(
        self,
        conn_id: str,
        code: int = CloseCode.DISCONNECTED,
        message: str = "Disconnected by server",
    ) -> bool:
        """Close a connection (default code 4001) after flushing what was queued.

        Returns False for an unknown id. Counted as a ``kick`` eviction. With a
        broker, the node holding the connection closes it.
        """
        if conn_id not in self._connections and self._broker is not None:
            if self._broker.view.connection(conn_id) is None:
                return False
            return self._broker.publish_disconnect(conn_id, code, message)
        return self.evict(conn_id, code, EvictionReason.KICK, message, discard=False)

    def evict(
        self,
        conn_id: str,
        code: int,
        reason: str,
        message: str = "",
        *,
        discard: bool = True,
    ) -> bool:
        """Remove a connection at once and close its socket in the background.

        ``reason`` labels the eviction in the stats. Queued output is discarded
        unless ``discard`` is False. The close gets :attr:`close_timeout`
        seconds; then the transport is aborted.
        """
        conn = self._connections.get(conn_id)
        if conn is None:
            return False
        pending = b"" if discard else b"".join(conn._pending)
        self.remove(conn_id)
        if pending and not discard:
            self._write(conn, pending)
        self.counters.evictions[reason] = self.counters.evictions.get(reason, 0) + 1
        logger.info("evicting connection %s (%s, close code %d)", conn_id, reason, code)
        self._spawn_close(conn, code, message)
        return True

    def _spawn_close(self, conn: Connection, code: int, message: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            conn._transport.abort()
            return
        task = loop.create_task(self._close_connection(conn, code, message))
        self._close_tasks.add(task)
        task.add_done_callback(self._close_tasks.discard)

    async def _close_connection(self, conn: Connection, code: int, message: str) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                await conn._close(code, message)
        except asyncio.CancelledError:
            conn._transport.abort()
            raise
        except (TimeoutError, ConnectionError, RuntimeError):
            conn._transport.abort()
        except Exception:
            logger.exception("closing connection %s failed", conn.id)
            conn._transport.abort()

    async def close_all(
        self, code: int = CloseCode.GOING_AWAY, message: str = "Server shutting down"
    ) -> None:
        """Close every connection in parallel, each within :attr:`close_timeout`.

        Used at shutdown: what was queued is flushed first, stuck peers are
        aborted, and the call returns when every socket is closed or aborted.
        """
        self.flush()
        for conn in list(self._connections.values()):
            self.remove(conn.id)
            self._spawn_close(conn, code, message)
        if self._close_tasks:  # these closes, and evictions still closing
            await asyncio.gather(*self._close_tasks, return_exceptions=True)

    # --- heartbeat -----------------------------------------------------------------

    @property
    def heartbeat_config(self) -> HeartbeatConfig | None:
        """The heartbeat timing used when it (re)starts; None: off."""
        return self._heartbeat_config

    def configure_heartbeat(self, config: HeartbeatConfig | None) -> bool:
        """Set the heartbeat configuration once; the first caller wins.

        Apps call this at startup so that the first app to start sets the
        manager's heartbeat. Returns True if this call set it.
        """
        if self._heartbeat_configured:
            return False
        self._heartbeat_configured = True
        self._heartbeat_config = config
        return True

    @property
    def heartbeat_active(self) -> bool:
        """True while the heartbeat timer runs."""
        task = self._heartbeat_task
        return task is not None and not task.done()

    def start_heartbeat(self, interval: float | None = None, timeout: float | None = None) -> None:
        """Start (or restart) the heartbeat; times in seconds.

        Missing values come from the current configuration (default 30 s / 10 s).
        Must be called with the event loop running. Raises
        :class:`~lucent_ws.errors.ConfigurationError` if ``timeout > interval``.
        """
        base = self._heartbeat_config or HeartbeatConfig()
        config = HeartbeatConfig(
            interval=base.interval if interval is None else interval,
            timeout=base.timeout if timeout is None else timeout,
        )
        loop = asyncio.get_running_loop()
        self.stop_heartbeat()
        self._heartbeat_config = config
        self._heartbeat_task = loop.create_task(self._heartbeat(config), name="lucent_ws heartbeat")

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat timer (connections stay open)."""
        task = self._heartbeat_task
        self._heartbeat_task = None
        if task is not None and not task.done():
            task.cancel()

    def pong(self, conn_id: str) -> bool:
        """Mark a connection alive; False for an unknown id."""
        conn = self._connections.get(conn_id)
        if conn is None:
            return False
        conn.last_seen = self._clock()
        return True

    async def _heartbeat(self, config: HeartbeatConfig) -> None:
        # One timer sweeps every connection once per interval. The sweep is spread
        # evenly over the interval, a slice per tick, so that 10,000 pings (and their
        # pongs) never arrive at once; each slice is checked `timeout` after its ping,
        # which evicts a silent connection within [timeout, timeout + tick].
        loop = asyncio.get_running_loop()
        tick = min(HEARTBEAT_TICK, config.interval / 10)
        ticks_per_round = max(1, round(config.interval / tick))
        awaiting: deque[tuple[float, list[Connection]]] = deque()
        sweep: list[Connection] = []
        per_tick = 0
        position = ticks_per_round  # start a round at the first tick
        next_tick = loop.time() + tick
        while True:
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            next_tick = max(next_tick + tick, loop.time())
            now = self._clock()
            while awaiting and awaiting[0][0] + config.timeout <= now:
                pinged_at, pinged = awaiting.popleft()
                for conn in pinged:
                    if not conn.closed and conn.last_seen < pinged_at:
                        self.evict(
                            conn.id,
                            CloseCode.HEARTBEAT_TIMEOUT,
                            EvictionReason.HEARTBEAT,
                            "Heartbeat timeout",
                        )
            if position >= ticks_per_round:
                sweep = list(self._connections.values())
                per_tick = -(-len(sweep) // ticks_per_round)  # ceiling division
                position = 0
            first = position * per_tick
            position += 1
            due = [conn for conn in sweep[first : first + per_tick] if not conn.closed]
            if due:
                self._fanout(due, _HEARTBEAT_FRAME, [])
                awaiting.append((now, due))

    # --- stats ---------------------------------------------------------------------

    def refuse_handshake(self, reason: str) -> None:
        """Count a handshake refused before the upgrade (``origin``, ``auth``, ...)."""
        refusals = self.counters.handshake_refusals
        refusals[reason] = refusals.get(reason, 0) + 1

    def get_stats(self) -> Stats:
        """Totals in their JSON form: ``connections``, ``rooms``, ``heartbeatActive``, ...

        With a broker, ``connections`` and ``rooms`` are cluster-wide, the
        counters stay this node's, and ``node``, ``broker``, ``undelivered``
        and ``nodes`` (each node's own figures) are added.
        """
        stats = self.local_stats()
        broker = self._broker
        if broker is None:
            return stats
        view = broker.view
        stats["connections"] += view.connection_count()
        rooms = stats["rooms"]
        for room, size in view.room_sizes().items():
            rooms[room] = rooms.get(room, 0) + size
        cluster = broker.cluster_stats()
        stats["node"] = cluster["node"]
        stats["broker"] = cluster["broker"]
        stats["undelivered"] = cluster["undelivered"]
        stats["nodes"] = cluster["nodes"]
        return stats

    def local_stats(self) -> Stats:
        """Like :meth:`get_stats` for this node alone."""
        counters = self.counters
        return {
            "connections": len(self._connections),
            "rooms": {name: len(members) for name, members in self._rooms.items()},
            "heartbeatActive": self.heartbeat_active,
            "messagesIn": counters.messages_in,
            "messagesOut": counters.messages_out,
            "bytesOut": counters.bytes_out,
            "evictions": dict(counters.evictions),
            "handshakeRefusals": dict(counters.handshake_refusals),
            "uptime": round(self._clock() - self._started, 3),
        }


def _present(members: Mapping[str, Connection], exclude: Iterable[str]) -> list[Connection]:
    """The connections of ``members`` that ``exclude`` names, each once."""
    if not exclude:
        return []
    return [members[conn_id] for conn_id in set(exclude) if conn_id in members]


def _as_set(exclude: Iterable[str]) -> frozenset[str]:
    if not exclude:
        return _NO_EXCLUDE
    return exclude if isinstance(exclude, frozenset) else frozenset(exclude)
