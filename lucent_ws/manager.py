"""The manager: the public API of the hub, cluster-wide.

Host code, hooks and the admin API use :class:`WebSocketManager`, whose methods
mirror the Lucent ``wsManager`` in snake_case. It is a :class:`~lucent_ws.node.Node`
(this node's connections, deliveries, closes and heartbeat) that also reaches
the other nodes: every method acts locally first, then hands the same encoded
bytes to the cluster. Pure Python on asyncio, with no aiohttp import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from . import jsoncodec
from .cluster import Cluster
from .codes import CloseCode
from .config import HeartbeatConfig
from .envelope import RoomMessage
from .errors import ConfigurationError
from .history_node import NodeHistory
from .hooks import MessageHandler, MessageTypes
from .node import Node
from .policy import Policies, RoomPolicy
from .presence_hub import PresenceSnapshot, PresenceTracker
from .replica import RemoteConnection
from .shared_reads import shared_page
from .stats import Stats, with_cluster
from .streams import (
    DEFAULT_HISTORY_MAX_BYTES,
    DEFAULT_RECOVER_MAX,
    HistoryPage,
    Published,
    Streams,
    since_of,
)

__all__ = ["WebSocketManager", "ws_manager"]

_NO_EXCLUDE: Final[frozenset[str]] = frozenset()


class WebSocketManager(Node):
    """Rooms, direct messages, broadcasts, metadata, stats and heartbeat.

    ``heartbeat`` is the manager's own heartbeat timing (None: off); it starts
    by itself with the first connection. ``close_timeout`` bounds each
    graceful close before the socket is aborted. ``policies`` are the room
    policies (:class:`~lucent_ws.policy.RoomPolicy`; unmatched rooms get the
    default, no rules). Rooms whose policy has ``history_size`` keep their
    messages (at most ``history_max_bytes`` for the whole node) and replay at
    most ``recover_max`` of them to a client that rejoins with ``since``
    (see :mod:`lucent_ws.streams`). Send methods never block and never raise for a dead or
    slow peer; they return what they queued. They must be called on the event
    loop thread.
    """

    def __init__(
        self,
        *,
        heartbeat: HeartbeatConfig | None = HeartbeatConfig(),  # noqa: B008 - frozen
        close_timeout: float = 2.0,
        policies: Iterable[RoomPolicy] | Policies = (),
        clock: Callable[[], float] = time.monotonic,
        history_max_bytes: int = DEFAULT_HISTORY_MAX_BYTES,
        recover_max: int = DEFAULT_RECOVER_MAX,
    ) -> None:
        super().__init__(heartbeat=heartbeat, close_timeout=close_timeout, clock=clock)
        self.policies = policies if isinstance(policies, Policies) else Policies(policies)
        """The room policies (:class:`~lucent_ws.policy.Policies`)."""
        self.streams = Streams(history_max_bytes, recover_max)
        """The history of the rooms with ``history_size`` (:class:`~lucent_ws.streams.Streams`)."""
        self.message_handlers = MessageTypes()
        """The application message handlers by type (:meth:`message` adds them)."""
        self._history = NodeHistory(
            self._hub,
            self._delivery,
            self._outbox,
            self.streams,
            lambda room: self.policies.for_room(room),
        )
        self._presence = PresenceTracker(
            self._hub,
            lambda room: self.policies.for_room(room),
            lambda conns, frame: self._outbox.fanout(conns, frame, []),
        )

    # --- cluster -----------------------------------------------------------------

    def attach_cluster(self, cluster: Cluster | None) -> None:
        """Reach connections on other nodes through ``cluster`` (None: this node only).

        Brokers attach themselves when they start; see :mod:`lucent_ws.broker`.
        """
        super().attach_cluster(cluster)
        self._presence.attach(self._cluster.view)

    def history_target(self) -> NodeHistory:
        """Where a broker delivers history rooms' messages (:mod:`lucent_ws.history_node`)."""
        return self._history

    def get_remote_connection(self, conn_id: str) -> RemoteConnection | None:
        """The connection with this id on another node (id, node, rooms, meta), or None."""
        return self._cluster.view.connection(conn_id)

    # --- rooms -------------------------------------------------------------------

    def join_room(self, conn_id: str, room: str) -> bool:
        """Add a local connection to a room; True when membership changed."""
        conn = self._hub.connections.get(conn_id)
        if conn is None or not self._hub.join(conn, room):
            return False
        self._cluster.joined(conn_id, room)
        self._membership_changed((room,))
        return True

    def leave_room(self, conn_id: str, room: str) -> bool:
        """Remove a connection from a room (gone with its last member); True if it changed."""
        conn = self._hub.connections.get(conn_id)
        if conn is None or not self._hub.leave(conn, room):
            return False
        self._cluster.left(conn_id, room)
        self._membership_changed((room,))
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
        remote = self._cluster.view.room_sizes()
        if not remote:  # one node: no merge (50,000 rooms cost a few ms to merge)
            return list(self._hub.rooms)
        return list(dict.fromkeys([*self._hub.rooms, *remote]))

    def room_size(self, room: str) -> int:
        """Number of members of ``room`` (0 for an unknown room), cluster-wide."""
        members = self._hub.rooms.get(room)
        size = len(members) if members is not None else 0
        return size + self._cluster.view.room_size(room)

    # --- sending -----------------------------------------------------------------

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
        if self.policies.for_room(message.room).history_size:
            return self.publish_tracked(message, exclude).delivered
        excluded = _as_set(exclude)
        count = self._delivery.room(message, excluded)
        return count + self._cluster.publish_room(message, excluded)

    # --- history -------------------------------------------------------------------

    def publish_tracked(
        self, message: RoomMessage, exclude: Iterable[str] = (), publish_id: str | None = None
    ) -> Published:
        """Like :meth:`publish`, answering the message's offset and epoch in a history room.

        A ``publish_id`` already published in the room's history window publishes
        nothing and answers the original offset with ``duplicate=True``. With a
        broker the backend assigns offsets: the message is queued for it (in order
        with this node's other publishes) and the answer has no offset; use
        :meth:`publish_confirmed` to learn it.
        """
        policy = self.policies.for_room(message.room)
        excluded = _as_set(exclude)
        if not policy.history_size:
            count = self._delivery.room(message, excluded)
            return Published(count + self._cluster.publish_room(message, excluded))
        shared = self._cluster.history
        if shared is not None:
            if not shared.append_later(message, policy, excluded):
                return Published(0)
            return Published(self._recipients(message.room, excluded))
        stamped, duplicate = self.streams.stamp(message, policy, publish_id)
        if duplicate:
            return Published(0, stamped.offset, stamped.epoch, True)
        count = self._delivery.room(stamped, excluded)
        count += self._cluster.publish_room(stamped, excluded)
        return Published(count, stamped.offset, stamped.epoch)

    async def publish_confirmed(
        self, message: RoomMessage, exclude: Iterable[str] = (), publish_id: str | None = None
    ) -> Published:
        """Like :meth:`publish_tracked`, once the message has its offset, with a broker too.

        With a broker, raises :class:`~lucent_ws.errors.Unavailable` for a history
        room while the broker is down: nothing is published, no offset handed out.
        """
        policy = self.policies.for_room(message.room)
        shared = self._cluster.history
        if shared is None or not policy.history_size:
            return self.publish_tracked(message, exclude, publish_id)
        excluded = _as_set(exclude)
        done = await shared.append(message, policy, excluded, publish_id)
        if done.duplicate:
            return Published(0, done.offset, done.epoch, True)
        return Published(self._recipients(message.room, excluded), done.offset, done.epoch)

    def _recipients(self, room: str, excluded: frozenset[str]) -> int:
        local = self._hub.rooms.get(room, {})
        count = len(local) - sum(1 for conn_id in excluded if conn_id in local)
        return count + self._cluster.view.room_size(room, excluded)

    def get_history(
        self,
        room: str,
        since: Mapping[str, Any] | tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """A room's kept messages (v2 envelopes, oldest first), its epoch and top offset.

        ``since`` (``{"offset": N, "epoch": E}`` or ``(N, E)``): the messages after
        it, at most ``limit`` (in another epoch: every kept one); without it, the
        newest ``limit`` (default: all kept). Raises
        :class:`~lucent_ws.errors.ConfigurationError` for a room without history.
        With a broker this is this node's copy; :meth:`fetch_history` reads the backend.
        """
        policy = self.policies.for_room(room)
        if not policy.history_size:
            raise ConfigurationError(f"room {room!r} keeps no history")
        return self.streams.history_page(room, policy, since_of(since), limit)

    async def fetch_history(
        self,
        room: str,
        since: Mapping[str, Any] | tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """:meth:`get_history`, read from the broker's backend when there is one.

        Raises :class:`~lucent_ws.errors.Unavailable` while the broker is down.
        """
        shared = self._cluster.history
        if shared is None:
            return self.get_history(room, since, limit)
        page = await shared_page(shared, room, self.policies.for_room(room), since_of(since), limit)
        return HistoryPage(room, page[0].epoch, page[0].offset, jsoncodec.loads(page[1]))

    def broadcast_all(self, payload: Any, *, exclude: Iterable[str] = ()) -> int:
        """Queue ``payload`` for every connection not in ``exclude``; returns the count."""
        data = jsoncodec.dumps(payload)
        excluded = _as_set(exclude)
        count = self._delivery.everyone(data, excluded)
        return count + self._cluster.publish_all(data, excluded)

    # --- application messages ----------------------------------------------------

    def message(self, kind: str) -> Callable[[MessageHandler], MessageHandler]:
        """Decorator: handle client messages of the application type ``kind``.

        The handler gets ``(conn, msg)``, sync or async; what it returns goes
        back as ``{"type": "reply", "ref": REF, "data": ...}`` when it is not
        None or the message has a ``ref``. Built-in types cannot be taken.
        """
        return self.message_handlers.register(kind)

    # --- presence -------------------------------------------------------------------

    def _membership_changed(self, rooms: Iterable[str]) -> None:
        if self.policies:  # rooms without policies skip presence entirely
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

    # --- metadata ----------------------------------------------------------------

    def set_meta(self, conn_id: str, key: str, value: Any) -> bool:
        """Store ``value`` under ``key`` for a connection; False for an unknown id."""
        conn = self._hub.connections.get(conn_id)
        if conn is None:
            return False
        conn.meta[key] = value
        self._cluster.meta_changed(conn)
        self._membership_changed(conn.rooms)
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

    # --- closing -----------------------------------------------------------------

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

    # --- stats -------------------------------------------------------------------

    def get_stats(self) -> Stats:
        """Totals in their JSON form: ``connections``, ``rooms``, ``heartbeatActive``, ...

        In a cluster, ``connections`` and ``rooms`` are cluster-wide, the
        counters stay this node's, and ``node``, ``broker``, ``undelivered``
        and ``nodes`` (each node's own figures) are added.
        """
        cluster = self._cluster.cluster_stats()
        stats = self.local_stats()
        return stats if cluster is None else with_cluster(stats, self._cluster.view, cluster)


ws_manager = WebSocketManager()
"""The default manager, shared by every app that is not given another one."""


def _as_set(exclude: Iterable[str]) -> frozenset[str]:
    if not exclude:
        return _NO_EXCLUDE
    return exclude if isinstance(exclude, frozenset) else frozenset(exclude)
