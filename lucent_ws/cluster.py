"""The seam between one node's hub and the other nodes of a cluster.

Cross-node traffic flows one way through two narrow interfaces:

- :class:`Cluster` is what the manager calls: it reports local membership
  changes, publishes what local callers send to other nodes, and answers reads
  about them from a replicated :class:`~lucent_ws.replica.ClusterView`.
  :class:`SingleNode`, the default, has no other nodes;
  :class:`lucent_ws.broker.Broker` replicates over a storage backend (Redis).
- :class:`LocalNode` is what a cluster calls back with what other nodes sent:
  deliveries and kicks for local connections, and the local membership for
  snapshots. :class:`~lucent_ws.WebSocketManager` implements it.

Every method is synchronous and never blocks: a cluster queues work for its own
I/O task, and reads come from its local replica.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Protocol

from .connection import Connection
from .envelope import RoomMessage
from .replica import ClusterView
from .stats import ClusterStats, Stats

if TYPE_CHECKING:
    from .broker.backend import Appended, StreamRead
    from .policy import RoomPolicy
    from .ring import Position
    from .sequencer import Resync

__all__ = ["Cluster", "HistoryTarget", "LocalNode", "SharedHistory", "SingleNode"]


class HistoryTarget(Protocol):
    """Where a cluster's history rooms are delivered on this node (the manager's side)."""

    def policy(self, room: str) -> RoomPolicy | None:
        """The room's policy if it keeps history, else None."""

    def local_rooms(self) -> list[str]:
        """The history rooms with members on this node."""

    def deliver(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        """Deliver a sequenced message to the room's local members and keep a copy."""

    def resync(self, resync: Resync) -> int:
        """Send ``resync`` to the room's local v2 members; returns how many got it."""


class SharedHistory(Protocol):
    """History rooms whose offsets a cluster's backend assigns (one order on every node).

    Methods that reach the backend raise :class:`~lucent_ws.errors.Unavailable`
    while it is unreachable.
    """

    def position(self, room: str) -> Position | None:
        """The room's epoch and the last offset delivered on this node; None if unknown."""

    async def follow(self, room: str, policy: RoomPolicy) -> Position:
        """:meth:`position`, asking the backend first if this node does not follow the room."""

    async def append(
        self,
        message: RoomMessage,
        policy: RoomPolicy,
        exclude: frozenset[str],
        publish_id: str | None,
    ) -> Appended:
        """Append and publish through the backend; the offset it got."""

    def append_later(
        self, message: RoomMessage, policy: RoomPolicy, exclude: frozenset[str]
    ) -> bool:
        """Hand the append to the ordered publisher; False (undelivered) when down."""

    async def read(self, room: str, policy: RoomPolicy, after: int, count: int) -> StreamRead:
        """The backend's position of the room and up to ``count`` entries after ``after``."""

    async def caught_up(self, room: str, top: int, timeout: float) -> Position | None:
        """Wait (at most ``timeout``) until this node delivered ``top`` of the room's epoch."""


class LocalNode(Protocol):
    """What a cluster reaches on this node: its connections and local deliveries."""

    @property
    def cluster(self) -> Cluster:
        """The cluster the node is attached to."""

    def attach_cluster(self, cluster: Cluster | None) -> None:
        """Attach the node to ``cluster`` (None: detach, this node only)."""

    def connection_ids(self) -> list[str]:
        """Ids of every local connection."""

    def get_connection(self, conn_id: str) -> Connection | None:
        """The local connection with this id, or None."""

    def deliver_to_room(self, message: RoomMessage, exclude: Iterable[str] = ()) -> int:
        """Fan a room message out to the room's local members; returns the count."""

    def deliver_to_all(self, data: bytes, exclude: Iterable[str] = ()) -> int:
        """Fan encoded JSON out to every local connection; returns the count."""

    def deliver_to(self, conn_id: str, data: bytes) -> bool:
        """Queue encoded JSON for one local connection; False if it is not here."""

    def kick(self, conn_id: str, code: int, message: str) -> bool:
        """Close a local connection on another node's request; False if it is not here."""

    def local_stats(self) -> Stats:
        """This node's own figures."""

    def history_target(self) -> HistoryTarget | None:
        """Where sequenced history-room messages go; None: the node keeps no history."""


class Cluster(Protocol):
    """What the manager calls to reach connections on other nodes.

    ``exclude`` sets hold connection ids of any node. Publish methods return
    what they could hand over for delivery elsewhere (recipients counted from
    :attr:`view` at publish time); while the cluster is unreachable they return
    0/False and count the message as undelivered, never claim it.
    """

    @property
    def node_id(self) -> str:
        """This node's id, unique in the cluster."""

    @property
    def view(self) -> ClusterView:
        """The other nodes' membership, as replicated."""

    @property
    def history(self) -> SharedHistory | None:
        """Shared history rooms; None: each node numbers its own (a single node)."""

    def connected(self, conn: Connection) -> None:
        """A local connection opened."""

    def removed(self, conn_id: str, rooms: Collection[str]) -> None:
        """A local connection closed; ``rooms`` are the rooms it was in."""

    def joined(self, conn_id: str, room: str) -> None:
        """A local connection joined a room."""

    def left(self, conn_id: str, room: str) -> None:
        """A local connection left a room."""

    def meta_changed(self, conn: Connection) -> None:
        """A local connection's metadata changed."""

    def publish_room(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        """Send a room message to its members on other nodes; remote recipients."""

    def publish_all(self, data: bytes, exclude: frozenset[str]) -> int:
        """Send encoded JSON to every connection on other nodes; remote recipients."""

    def publish_direct(self, conn_id: str, data: bytes) -> bool:
        """Send encoded JSON to a connection on another node; True if handed over."""

    def publish_disconnect(self, conn_id: str, code: int, message: str) -> bool:
        """Ask the node holding ``conn_id`` to close it; True if handed over."""

    def cluster_stats(self) -> ClusterStats | None:
        """This node's id, the backend state and per-node figures; None on a single node."""

    async def start(self, node: LocalNode) -> None:
        """Attach to ``node`` (the manager's :meth:`attach_cluster`) and connect."""

    async def stop(self) -> None:
        """Flush, leave the cluster and detach; the app calls it at cleanup."""


class SingleNode:
    """The cluster of one: no other nodes, nothing to publish (the default)."""

    __slots__ = ("_view",)

    def __init__(self) -> None:
        self._view = ClusterView()

    @property
    def node_id(self) -> str:
        """Always ``"local"``."""
        return "local"

    @property
    def view(self) -> ClusterView:
        """An empty view."""
        return self._view

    @property
    def history(self) -> SharedHistory | None:
        """None: this node numbers its history rooms itself."""
        return None

    def connected(self, conn: Connection) -> None:
        """Nothing to replicate."""

    def removed(self, conn_id: str, rooms: Collection[str]) -> None:
        """Nothing to replicate."""

    def joined(self, conn_id: str, room: str) -> None:
        """Nothing to replicate."""

    def left(self, conn_id: str, room: str) -> None:
        """Nothing to replicate."""

    def meta_changed(self, conn: Connection) -> None:
        """Nothing to replicate."""

    def publish_room(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        """No other node: 0."""
        return 0

    def publish_all(self, data: bytes, exclude: frozenset[str]) -> int:
        """No other node: 0."""
        return 0

    def publish_direct(self, conn_id: str, data: bytes) -> bool:
        """No other node: False."""
        return False

    def publish_disconnect(self, conn_id: str, code: int, message: str) -> bool:
        """No other node: False."""
        return False

    def cluster_stats(self) -> ClusterStats | None:
        """None: the stats stay single-node."""
        return None

    async def start(self, node: LocalNode) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""
