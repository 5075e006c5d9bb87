"""The manager: the public API of the hub, composing its parts.

Pure Python on asyncio, with no aiohttp import. The I/O layer registers each
accepted connection with :meth:`WebSocketManager.connect`, handing over the
transport to write frames to and a coroutine function that closes the socket
gracefully. Everything else (host code, hooks, the admin API) uses the public
methods, which mirror the Lucent ``wsManager`` in snake_case.

The parts, each in its own module: the local registry
(:class:`~lucent_ws.hub.Hub`), the outbound queues
(:class:`~lucent_ws.outbox.Outbox`), the background closes
(:class:`~lucent_ws.closing.Closer`), the heartbeat sweeper
(:class:`~lucent_ws.heartbeat.Heartbeat`), the counters
(:class:`~lucent_ws.stats.Counters`) and the other nodes
(:class:`~lucent_ws.cluster.Cluster`, :class:`~lucent_ws.cluster.SingleNode` by
default). Every method delivers locally first, then hands the same encoded
bytes to the cluster.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from . import jsoncodec, protocol
from .closing import Closer
from .cluster import Cluster, SingleNode
from .codes import CloseCode, EvictionReason
from .config import HeartbeatConfig
from .connection import CloseFunction, Connection, Transport
from .delivery import Delivery
from .envelope import V1, RoomMessage
from .errors import ConfigurationError
from .frames import PING_FRAME, text_frame
from .heartbeat import Heartbeat
from .hooks import MessageHandler
from .hub import Hub
from .outbox import Outbox
from .policy import Policies, RoomPolicy
from .presence_hub import PresenceSnapshot, PresenceTracker
from .replica import RemoteConnection
from .stats import Counters, Stats, node_stats, with_cluster

__all__ = ["WebSocketManager", "ws_manager"]

logger = logging.getLogger("lucent_ws.manager")

_NO_EXCLUDE: Final[frozenset[str]] = frozenset()
_HEARTBEAT_FRAME: Final = text_frame(protocol.PING) + PING_FRAME


class WebSocketManager:
    """Rooms, direct messages, broadcasts, metadata, stats and heartbeat.

    ``heartbeat`` is the manager's own heartbeat timing (None: off); it starts
    by itself with the first connection. ``close_timeout`` bounds each
    graceful close before the socket is aborted. ``policies`` are the room
    policies (:class:`~lucent_ws.policy.RoomPolicy`; unmatched rooms get the
    default, no rules). Send methods never block and
    never raise for a dead or slow peer; they return what they queued. They
    must be called on the event loop thread.
    """

    def __init__(
        self,
        *,
        heartbeat: HeartbeatConfig | None = HeartbeatConfig(),  # noqa: B008 - frozen
        close_timeout: float = 2.0,
        policies: Iterable[RoomPolicy] | Policies = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = Hub()
        self.counters = Counters()
        self._outbox = Outbox(self.counters, self._evict_slow)
        self._delivery = Delivery(self._hub, self._outbox)
        self.policies = policies if isinstance(policies, Policies) else Policies(policies)
        """The room policies (:class:`~lucent_ws.policy.Policies`)."""
        self._handlers: dict[str, MessageHandler] = {}
        self._closer = Closer(close_timeout)
        self._heartbeat = Heartbeat(
            heartbeat,
            connections=self._hub.connections.values,
            ping=self._ping,
            expire=self._expire,
            clock=clock,
        )
        self._cluster: Cluster = SingleNode()
        self._presence = PresenceTracker(
            self._hub, self._policy_of, lambda conns, frame: self._outbox.fanout(conns, frame, [])
        )
        self._clock = clock
        self._started = clock()

    # --- cluster -------------------------------------------------------------------

    @property
    def cluster(self) -> Cluster:
        """The other nodes (:class:`~lucent_ws.cluster.SingleNode` when there are none)."""
        return self._cluster

    def attach_cluster(self, cluster: Cluster | None) -> None:
        """Reach connections on other nodes through ``cluster`` (None: this node only).

        Brokers attach themselves when they start; see :mod:`lucent_ws.broker`.
        """
        self._cluster = cluster if cluster is not None else SingleNode()
        self._presence.attach(self._cluster.view)

    def get_remote_connection(self, conn_id: str) -> RemoteConnection | None:
        """The connection with this id on another node (id, node, rooms, meta), or None."""
        return self._cluster.view.connection(conn_id)

    # --- connections (used by the I/O layer) -----------------------------------

    @property
    def close_timeout(self) -> float:
        """Seconds a graceful close may take before the socket is aborted."""
        return self._closer.timeout

    def connect(
        self,
        transport: Transport,
        close: CloseFunction,
        *,
        request: Any = None,
        meta: Mapping[str, Any] | None = None,
        max_outbound_buffer: int = 1024 * 1024,
        version: int = V1,
    ) -> Connection:
        """Register a new connection, queue its ``connected`` message and return it.

        ``version`` is the protocol it speaks (``envelope.V1`` or ``V2``).
        Starts the heartbeat if it is configured and not running yet.
        """
        conn_id = str(uuid.uuid4())
        conn = Connection(
            conn_id,
            transport,
            close,
            request=request,
            meta=meta,
            max_buffer=max_outbound_buffer,
            now=self._clock(),
            version=version,
        )
        beat = self._heartbeat.config
        timing = None if beat is None else (beat.interval, beat.timeout)
        self._outbox.open(conn)
        self._outbox.send(conn, text_frame(protocol.encode_connected(conn_id, version, timing)))
        self._hub.add(conn)
        self._cluster.connected(conn)
        if self._heartbeat.config is not None and not self._heartbeat.active:
            self._heartbeat.start()
        return conn

    def remove(self, conn_id: str) -> bool:
        """Forget a connection (rooms, metadata) without closing it; False if not live."""
        return self._remove(conn_id) is not None

    def _remove(self, conn_id: str) -> tuple[Connection, bytes] | None:
        conn = self._hub.remove(conn_id)
        if conn is None:
            return None
        self._cluster.removed(conn_id, conn.rooms)
        if self.policies:
            self._presence_changed(conn.rooms)
        conn.rooms.clear()
        conn.meta.clear()
        return conn, self._outbox.close(conn)

    def get_connection(self, conn_id: str) -> Connection | None:
        """The live local connection with this id, or None."""
        return self._hub.connections.get(conn_id)

    def connection_ids(self) -> list[str]:
        """Ids of every live local connection."""
        return list(self._hub.connections)

    def __len__(self) -> int:
        return len(self._hub.connections)

    def now(self) -> float:
        """The manager's clock: the time base of ``connected_at`` and ``last_seen``."""
        return self._clock()

    def touch(self, conn: Connection) -> None:
        """Record that something arrived from ``conn`` (heartbeat liveness)."""
        conn.last_seen = self._clock()

    # --- rooms -------------------------------------------------------------------

    def join_room(self, conn_id: str, room: str) -> bool:
        """Add a local connection to a room; True when membership changed."""
        conn = self._hub.connections.get(conn_id)
        if conn is None or not self._hub.join(conn, room):
            return False
        self._cluster.joined(conn_id, room)
        if self.policies:
            self._presence_changed((room,))
        return True

    def leave_room(self, conn_id: str, room: str) -> bool:
        """Remove a connection from a room (gone with its last member); True if it changed."""
        conn = self._hub.connections.get(conn_id)
        if conn is None or not self._hub.leave(conn, room):
            return False
        self._cluster.left(conn_id, room)
        if self.policies:
            self._presence_changed((room,))
        return True

    def get_room_members(self, room: str) -> list[str]:
        """Ids of the connections in ``room`` (empty for an unknown room), cluster-wide."""
        members = list(self._hub.rooms.get(room, ()))
        members.extend(self._cluster.view.room_members(room))
        return members

    def get_connection_rooms(self, conn_id: str) -> list[str]:
        """Names of the rooms a connection is in (empty for an unknown id)."""
        conn = self._hub.connections.get(conn_id)
        if conn is not None:
            return sorted(conn.rooms)
        remote = self.get_remote_connection(conn_id)
        return sorted(remote.rooms) if remote is not None else []

    def list_rooms(self) -> list[str]:
        """Names of every room with at least one member, cluster-wide."""
        return list(dict.fromkeys([*self._hub.rooms, *self._cluster.view.room_sizes()]))

    def room_size(self, room: str) -> int:
        """Number of members of ``room`` (0 for an unknown room), cluster-wide."""
        members = self._hub.rooms.get(room)
        size = len(members) if members is not None else 0
        return size + self._cluster.view.room_size(room)

    # --- sending -------------------------------------------------------------------

    def send_to(self, conn_id: str, payload: Any) -> bool:
        """Queue ``payload`` for one connection; True if it is live (on any node).

        Raises :class:`TypeError` if ``payload`` is not JSON-serialisable.
        """
        data = jsoncodec.dumps(payload)
        if self.deliver_to(conn_id, data):
            return True
        if self._cluster.view.connection(conn_id) is None:
            return False
        return self._cluster.publish_direct(conn_id, data)

    def send_encoded(self, conn: Connection, data: bytes) -> bool:
        """Queue already-encoded UTF-8 JSON for ``conn``; False if it is closed."""
        if conn.closed:
            return False
        self._outbox.send(conn, text_frame(data))
        return True

    def deliver_to(self, conn_id: str, data: bytes) -> bool:
        """Queue an encoded payload for a local connection; False if it is not here."""
        return self._delivery.direct(conn_id, data)

    def broadcast_to_room(self, room: str, payload: Any, *, exclude: Iterable[str] = ()) -> int:
        """Queue ``payload`` for every member of ``room`` not in ``exclude``.

        Returns the number of recipients. Raises :class:`TypeError` if
        ``payload`` is not JSON-serialisable.
        """
        return self.broadcast_encoded(room, jsoncodec.dumps(payload), exclude=exclude)

    def broadcast_encoded(
        self, room: str, data: bytes, *, exclude: Iterable[str] = (), sender: str | None = None
    ) -> int:
        """Like :meth:`broadcast_to_room` for already-encoded UTF-8 JSON.

        ``sender`` is the client connection publishing it (None: the server).
        """
        return self.publish(RoomMessage(room, data, sender), exclude)

    def publish(self, message: RoomMessage, exclude: Iterable[str] = ()) -> int:
        """Deliver a room message here and on every other node; the recipients."""
        excluded = _as_set(exclude)
        count = self._delivery.room(message, excluded)
        return count + self._cluster.publish_room(message, excluded)

    def broadcast_all(self, payload: Any, *, exclude: Iterable[str] = ()) -> int:
        """Queue ``payload`` for every connection not in ``exclude``; returns the count."""
        data = jsoncodec.dumps(payload)
        excluded = _as_set(exclude)
        count = self._delivery.everyone(data, excluded)
        return count + self._cluster.publish_all(data, excluded)

    def deliver_to_room(self, message: RoomMessage, exclude: Iterable[str] = ()) -> int:
        """Fan a room message out to its members on this node only."""
        return self._delivery.room(message, exclude)

    def deliver_to_all(self, data: bytes, exclude: Iterable[str] = ()) -> int:
        """Fan encoded JSON out to every connection on this node only."""
        return self._delivery.everyone(data, exclude)

    def flush(self) -> None:
        """Write every connection's pending frames now, one write per connection."""
        self._outbox.flush()

    # --- application messages ---------------------------------------------------

    def message(self, kind: str) -> Callable[[MessageHandler], MessageHandler]:
        """Decorator: handle client messages of the application type ``kind``.

        The handler gets ``(conn, msg)``, sync or async; what it returns goes
        back as ``{"type": "reply", "ref": REF, "data": ...}`` when it is not
        None or the message has a ``ref``. Built-in types cannot be taken.
        """
        if kind in protocol.MESSAGE_TYPES:
            raise ConfigurationError(f"{kind!r} is a built-in message type")

        def register(handler: MessageHandler) -> MessageHandler:
            self._handlers[kind] = handler
            return handler

        return register

    @property
    def message_handlers(self) -> Mapping[str, MessageHandler]:
        """The application message handlers by type."""
        return self._handlers

    # --- presence -------------------------------------------------------------------

    def _policy_of(self, room: str) -> RoomPolicy:
        return self.policies.for_room(room)

    def _presence_changed(self, rooms: Iterable[str]) -> None:
        for room in rooms:
            if self.policies.for_room(room).join_leave:
                self._presence.touch(room)

    @property
    def presence(self) -> PresenceTracker:
        """The presence of the rooms whose policy has ``presence``, cluster-wide."""
        return self._presence

    def get_presence(self, room: str) -> PresenceSnapshot | None:
        """Who is in ``room``, cluster-wide: ``{"count": N, "members": {KEY: [...]}}``.

        KEY is a member's ``userId`` metadata, else its connection id; each
        entry is ``{"id": ID, "info": {...}}`` with only the metadata keys the
        policy's ``presence_info`` lists. None if the room's policy has no presence.
        """
        if not self.policies.for_room(room).presence:
            return None
        return self._presence.presence(room)

    # --- metadata ------------------------------------------------------------------

    def set_meta(self, conn_id: str, key: str, value: Any) -> bool:
        """Store ``value`` under ``key`` for a connection; False for an unknown id."""
        conn = self._hub.connections.get(conn_id)
        if conn is None:
            return False
        conn.meta[key] = value
        self._cluster.meta_changed(conn)
        if self.policies:
            self._presence_changed(conn.rooms)
        return True

    def get_meta(self, conn_id: str, key: str, default: Any = None) -> Any:
        """Read a connection's metadata ``key`` (``default`` if unset or unknown id).

        A connection on another node is read from its replica.
        """
        conn = self._hub.connections.get(conn_id)
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
        """Close a connection on any node (4001 by default) after flushing what was queued.

        Counted as a ``kick`` eviction; False for an unknown id.
        """
        if self.kick(conn_id, code, message):
            return True
        if self._cluster.view.connection(conn_id) is None:
            return False
        return self._cluster.publish_disconnect(conn_id, code, message)

    def kick(self, conn_id: str, code: int, message: str) -> bool:
        """Close a local connection as a ``kick``, flushing what was queued first."""
        return self.evict(conn_id, code, EvictionReason.KICK, message, discard=False)

    def evict(
        self, conn_id: str, code: int, reason: str, message: str = "", *, discard: bool = True
    ) -> bool:
        """Remove a local connection at once and close its socket in the background.

        ``reason`` labels the eviction in the stats. Queued output is discarded
        unless ``discard`` is False. The close gets :attr:`close_timeout`
        seconds; then the transport is aborted.
        """
        removed = self._remove(conn_id)
        if removed is None:
            return False
        conn, pending = removed
        if pending and not discard:
            self._outbox.write(conn, pending)
        self.counters.evicted(reason)
        logger.info("evicting connection %s (%s, close code %d)", conn_id, reason, code)
        self._closer.close(conn, code, message)
        return True

    def _evict_slow(self, conn: Connection) -> None:
        self.evict(
            conn.id, CloseCode.TRY_AGAIN_LATER, EvictionReason.SLOW_CONSUMER, "Outbound buffer full"
        )

    async def close_all(
        self, code: int = CloseCode.GOING_AWAY, message: str = "Server shutting down"
    ) -> None:
        """Flush, then close every connection in parallel, each within :attr:`close_timeout`.

        Returns when every socket is closed or aborted (used at shutdown).
        """
        self._outbox.flush()
        for conn_id in list(self._hub.connections):
            removed = self._remove(conn_id)
            if removed is not None:
                self._closer.close(removed[0], code, message)
        await self._closer.wait()  # these closes, and evictions still closing

    # --- heartbeat -----------------------------------------------------------------

    @property
    def heartbeat_config(self) -> HeartbeatConfig | None:
        """The heartbeat timing used when it (re)starts; None: off."""
        return self._heartbeat.config

    def configure_heartbeat(self, config: HeartbeatConfig | None) -> None:
        """Set the heartbeat timing (None: off); a running heartbeat restarts with it."""
        if config is None:
            self._heartbeat.stop()
            self._heartbeat.config = None
        elif self._heartbeat.active:
            self._heartbeat.config = config
            self._heartbeat.start()
        else:
            self._heartbeat.config = config

    @property
    def heartbeat_active(self) -> bool:
        """True while the heartbeat timer runs."""
        return self._heartbeat.active

    def start_heartbeat(self, interval: float | None = None, timeout: float | None = None) -> None:
        """(Re)start the heartbeat (seconds; missing values: the configuration's) on the loop.

        The timing used becomes the configuration; ``timeout > interval`` raises
        :class:`~lucent_ws.errors.ConfigurationError`.
        """
        self._heartbeat.start(interval, timeout)

    def stop_heartbeat(self) -> None:
        """Stop the heartbeat timer (connections stay open; the next one restarts it)."""
        self._heartbeat.stop()

    def pong(self, conn_id: str) -> bool:
        """Mark a connection alive; False for an unknown id."""
        conn = self._hub.connections.get(conn_id)
        if conn is None:
            return False
        conn.last_seen = self._clock()
        return True

    def _ping(self, due: list[Connection]) -> None:
        self._outbox.fanout(due, _HEARTBEAT_FRAME, [])

    def _expire(self, conn: Connection) -> None:
        self.evict(
            conn.id, CloseCode.HEARTBEAT_TIMEOUT, EvictionReason.HEARTBEAT, "Heartbeat timeout"
        )

    # --- stats ---------------------------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds since the manager was created."""
        return self._clock() - self._started

    def refuse_handshake(self, reason: str) -> None:
        """Count a handshake refused before the upgrade (``origin``, ``auth``, ...)."""
        self.counters.refused(reason)

    def get_stats(self) -> Stats:
        """Totals in their JSON form: ``connections``, ``rooms``, ``heartbeatActive``, ...

        In a cluster, ``connections`` and ``rooms`` are cluster-wide, the
        counters stay this node's, and ``node``, ``broker``, ``undelivered``
        and ``nodes`` (each node's own figures) are added.
        """
        cluster = self._cluster.cluster_stats()
        stats = self.local_stats()
        return stats if cluster is None else with_cluster(stats, self._cluster.view, cluster)

    def local_stats(self) -> Stats:
        """Like :meth:`get_stats` for this node alone."""
        return node_stats(self._hub, self.counters, self._heartbeat.active, self.uptime)


ws_manager = WebSocketManager()
"""The default manager, shared by every app that is not given another one."""


def _as_set(exclude: Iterable[str]) -> frozenset[str]:
    if not exclude:
        return _NO_EXCLUDE
    return exclude if isinstance(exclude, frozenset) else frozenset(exclude)
