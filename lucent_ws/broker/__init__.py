"""Scale-out: the seam between the manager and the other nodes of a cluster.

A :class:`~lucent_ws.manager.WebSocketManager` on its own is one process, the
default. With a broker attached (:meth:`WebSocketManager.attach_broker`), the
manager first delivers to its own connections, then hands the same encoded
bytes to the broker, which carries them to the other nodes; they frame them and
fan out locally with the same fast path (:meth:`WebSocketManager.deliver_to_room`).

Every broker method is synchronous and never blocks: a broker queues work for
its own I/O task. Reads (room members, stats) come from :attr:`Broker.view`, a
local replica of the other nodes' membership, so they stay synchronous too.

:class:`~lucent_ws.broker.redis.RedisBroker` (the ``redis`` extra) is the
shipped backend; ``lucent_ws.broker.redis`` is only imported when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypedDict

from .view import ClusterView, NodeView, Record, RemoteConnection

if TYPE_CHECKING:
    from ..manager import WebSocketManager

__all__ = [
    "Broker",
    "ClusterStats",
    "ClusterView",
    "NodeStats",
    "NodeView",
    "Record",
    "RemoteConnection",
]


class NodeStats(TypedDict):
    """One node's own figures in :class:`ClusterStats`."""

    connections: int
    rooms: int
    messagesIn: int
    messagesOut: int
    bytesOut: int
    undelivered: int
    uptime: float
    self: bool


class ClusterStats(TypedDict):
    """What a broker adds to :meth:`WebSocketManager.get_stats`."""

    node: str
    broker: str
    undelivered: int
    nodes: dict[str, NodeStats]


class Broker(Protocol):
    """What a manager calls to reach connections on other nodes (and an app starts).

    ``exclude`` sets hold connection ids of any node. Publish methods return
    what they could hand over for delivery elsewhere (recipients counted from
    :attr:`view` at publish time); while the backend is unavailable they
    return 0/False and count the message as undelivered, never claim it.
    """

    @property
    def node_id(self) -> str:
        """This node's id, unique in the cluster."""

    @property
    def view(self) -> ClusterView:
        """The other nodes' membership, as replicated."""

    def connection_changed(self, conn_id: str) -> None:
        """A local connection appeared, left, joined or left a room, or changed its meta."""

    def publish_room(self, room: str, data: bytes, exclude: frozenset[str]) -> int:
        """Send encoded JSON to the room's members on other nodes; remote recipients."""

    def publish_all(self, data: bytes, exclude: frozenset[str]) -> int:
        """Send encoded JSON to every connection on other nodes; remote recipients."""

    def publish_direct(self, conn_id: str, data: bytes) -> bool:
        """Send encoded JSON to a connection on another node; True if handed over."""

    def publish_disconnect(self, conn_id: str, code: int, message: str) -> bool:
        """Ask the node holding ``conn_id`` to close it; True if handed over."""

    def cluster_stats(self) -> ClusterStats:
        """This node's id, the backend state, undelivered messages, per-node figures."""

    async def start(self, manager: WebSocketManager) -> None:
        """Attach to ``manager`` (:meth:`WebSocketManager.attach_broker`) and connect."""

    async def stop(self) -> None:
        """Flush, leave the cluster and detach; the app calls it at cleanup."""
