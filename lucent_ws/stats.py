"""Counters and the JSON shapes of the hub's statistics (one definition each)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from .codes import EvictionReason

if TYPE_CHECKING:
    from .hub import Hub
    from .replica import ClusterView

__all__ = [
    "ClusterStats",
    "Counters",
    "NodeStats",
    "Stats",
    "Totals",
    "cluster_totals",
    "node_stats",
    "node_totals",
    "with_cluster",
]


class Counters:
    """Monotonic counters since the manager was created."""

    __slots__ = ("bytes_out", "evictions", "handshake_refusals", "messages_in", "messages_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.evictions: dict[str, int] = {reason.value: 0 for reason in EvictionReason}
        self.handshake_refusals: dict[str, int] = {}

    def evicted(self, reason: str) -> None:
        """Count one eviction under ``reason``."""
        self.evictions[reason] = self.evictions.get(reason, 0) + 1

    def refused(self, reason: str) -> None:
        """Count one handshake refused before the upgrade."""
        self.handshake_refusals[reason] = self.handshake_refusals.get(reason, 0) + 1


class NodeStats(TypedDict):
    """One node's own figures in a cluster (``stats["nodes"][node_id]``)."""

    connections: int
    rooms: int
    messagesIn: int
    messagesOut: int
    bytesOut: int
    undelivered: int
    uptime: float
    self: bool


class ClusterStats(TypedDict):
    """What a cluster adds to the stats: this node, the broker's state, every node."""

    node: str
    broker: str
    undelivered: int
    nodes: dict[str, NodeStats]


class Totals(TypedDict):
    """The stats without the per-room counts: cheap at any number of rooms."""

    connections: int
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


class Stats(Totals):
    """The JSON form of :meth:`~lucent_ws.WebSocketManager.get_stats`."""

    rooms: dict[str, int]


def node_totals(
    connections: int, counters: Counters, heartbeat_active: bool, uptime: float
) -> Totals:
    """One node's own totals, from its connection count and counters."""
    return {
        "connections": connections,
        "heartbeatActive": heartbeat_active,
        "messagesIn": counters.messages_in,
        "messagesOut": counters.messages_out,
        "bytesOut": counters.bytes_out,
        "evictions": dict(counters.evictions),
        "handshakeRefusals": dict(counters.handshake_refusals),
        "uptime": round(uptime, 3),
    }


def node_stats(hub: Hub, counters: Counters, heartbeat_active: bool, uptime: float) -> Stats:
    """One node's own stats: its totals and its rooms' member counts."""
    totals = node_totals(len(hub.connections), counters, heartbeat_active, uptime)
    return {**totals, "rooms": {name: len(members) for name, members in hub.rooms.items()}}


def cluster_totals(totals: Totals, view: ClusterView, cluster: ClusterStats) -> Totals:
    """``totals`` with the other nodes' connections added, and the cluster's figures."""
    totals["connections"] += view.connection_count()
    totals["node"] = cluster["node"]
    totals["broker"] = cluster["broker"]
    totals["undelivered"] = cluster["undelivered"]
    totals["nodes"] = cluster["nodes"]
    return totals


def with_cluster(stats: Stats, view: ClusterView, cluster: ClusterStats) -> Stats:
    """``stats`` with the other nodes' connections and rooms added, and the cluster's figures."""
    cluster_totals(stats, view, cluster)
    rooms = stats["rooms"]
    for room, size in view.room_sizes().items():
        rooms[room] = rooms.get(room, 0) + size
    return stats
