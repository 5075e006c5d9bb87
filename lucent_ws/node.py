"""This node: its connections, their outbound path, closes and heartbeat.

:class:`Node` is what the I/O layer and the cluster talk to. The aiohttp
handler registers each accepted connection with :meth:`Node.connect`, handing
over the transport to write frames to and a coroutine function that closes the
socket gracefully; the cluster delivers what other nodes publish through the
``deliver_to*`` methods (it implements :class:`~lucent_ws.cluster.LocalNode`).
Pure Python on asyncio, with no aiohttp import.

The parts, each in its own module: the local registry
(:class:`~lucent_ws.hub.Hub`), the fan-out by protocol version
(:class:`~lucent_ws.delivery.Delivery`), the outbound queues
(:class:`~lucent_ws.outbox.Outbox`), the background closes
(:class:`~lucent_ws.closing.Closer`), the heartbeat sweeper
(:class:`~lucent_ws.heartbeat.Heartbeat`), the counters
(:class:`~lucent_ws.stats.Counters`) and the other nodes
(:class:`~lucent_ws.cluster.Cluster`, :class:`~lucent_ws.cluster.SingleNode` by
default). :class:`~lucent_ws.WebSocketManager` adds the cluster-wide public API.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from . import replies
from .closing import Closer
from .cluster import Cluster, SingleNode
from .codes import CloseCode, EvictionReason
from .config import HeartbeatConfig
from .connection import CloseFunction, Connection, Transport
from .delivery import Delivery
from .envelope import V1, RoomMessage
from .frames import PING_FRAME, text_frame
from .heartbeat import Heartbeat
from .hub import Hub
from .outbox import Outbox
from .stats import Counters, Stats, node_stats

__all__ = ["Node"]

logger = logging.getLogger("lucent_ws.node")

_HEARTBEAT_FRAME: Final = text_frame(replies.PING) + PING_FRAME


class Node:
    """This node's connections: registration, local deliveries, closes, heartbeat.

    ``heartbeat`` is the heartbeat timing (None: off); it starts by itself with
    the first connection. ``close_timeout`` bounds each graceful close before
    the socket is aborted. Methods never block and must be called on the event
    loop thread.
    """

    def __init__(
        self,
        *,
        heartbeat: HeartbeatConfig | None = HeartbeatConfig(),  # noqa: B008 - frozen
        close_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = Hub()
        self.counters = Counters()
        self._outbox = Outbox(self.counters, self._evict_slow)
        self._delivery = Delivery(self._hub, self._outbox)
        self._closer = Closer(close_timeout)
        self._heartbeat = Heartbeat(
            heartbeat,
            connections=self._hub.connections.values,
            ping=self._ping,
            expire=self._expire,
            clock=clock,
        )
        self._cluster: Cluster = SingleNode()
        self._clock = clock
        self._started = clock()

    # --- connections (used by the I/O layer and the cluster) ---------------------

    @property
    def close_timeout(self) -> float:
        """Seconds a graceful close may take (then the socket is closed or aborted)."""
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
        self._outbox.send(conn, text_frame(replies.encode_connected(conn_id, version, timing)))
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
        self._membership_changed(conn.rooms)
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

    # --- cluster -----------------------------------------------------------------

    @property
    def cluster(self) -> Cluster:
        """The other nodes (:class:`~lucent_ws.cluster.SingleNode` when there are none)."""
        return self._cluster

    def attach_cluster(self, cluster: Cluster | None) -> None:
        """Reach connections on other nodes through ``cluster`` (None: this node only).

        Brokers attach themselves when they start; see :mod:`lucent_ws.broker`.
        """
        self._cluster = cluster if cluster is not None else SingleNode()

    def _membership_changed(self, rooms: Iterable[str]) -> None:
        """Called when local members of ``rooms`` joined, left or changed metadata."""

    # --- local deliveries --------------------------------------------------------

    def send_encoded(self, conn: Connection, data: bytes) -> bool:
        """Queue already-encoded UTF-8 JSON for ``conn``; False if it is closed."""
        if conn.closed:
            return False
        self._outbox.send(conn, text_frame(data))
        return True

    def deliver_to(self, conn_id: str, data: bytes) -> bool:
        """Queue an encoded payload for a local connection; False if it is not here."""
        return self._delivery.direct(conn_id, data)

    def deliver_to_room(self, message: RoomMessage, exclude: Iterable[str] = ()) -> int:
        """Fan a room message out to its members on this node only."""
        return self._delivery.room(message, exclude)

    def deliver_to_all(self, data: bytes, exclude: Iterable[str] = ()) -> int:
        """Fan encoded JSON out to every connection on this node only."""
        return self._delivery.everyone(data, exclude)

    def deliver_to_v2(self, data: bytes) -> int:
        """Fan encoded JSON out, framed once and as it is, to every v2 connection here."""
        return self._delivery.v2(data)

    def headroom(self, conn: Connection) -> int:
        """Bytes a connection may still be queued before it is evicted as a slow consumer."""
        return self._outbox.headroom(conn)

    def flush(self) -> None:
        """Write every connection's pending frames now, one write per connection."""
        self._outbox.flush()

    # --- closing -----------------------------------------------------------------

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

    # --- heartbeat ---------------------------------------------------------------

    @property
    def heartbeat_config(self) -> HeartbeatConfig | None:
        """The heartbeat timing used when it (re)starts; None: off."""
        return self._heartbeat.config

    @property
    def heartbeat_active(self) -> bool:
        """True while the heartbeat timer runs."""
        return self._heartbeat.active

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

    # --- stats -------------------------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds since the manager was created."""
        return self._clock() - self._started

    def refuse_handshake(self, reason: str) -> None:
        """Count a handshake refused before the upgrade (``origin``, ``auth``, ...)."""
        self.counters.refused(reason)

    def local_stats(self) -> Stats:
        """Like :meth:`get_stats` for this node alone."""
        return node_stats(self._hub, self.counters, self._heartbeat.active, self.uptime)
