"""Prometheus metrics read from the manager at scrape time.

Each admin app has its own :class:`~prometheus_client.CollectorRegistry`, so
several hubs in one process never collide with each other or with the host's
default registry. Per-room member gauges are limited to the largest rooms to
keep label cardinality bounded.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..codes import EvictionReason
from ..manager import WebSocketManager
from .rooms import RoomTotals, hub_totals, room_totals

__all__ = ["CONTENT_TYPE", "HubCollector", "make_registry", "prepare", "render"]

_COLLECTORS: weakref.WeakKeyDictionary[CollectorRegistry, HubCollector] = (
    weakref.WeakKeyDictionary()
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class HubCollector(Collector):
    """Exposes a manager's stats and counters as ``lucent_ws_*`` metrics."""

    def __init__(self, manager: WebSocketManager, *, top_rooms: int = 20) -> None:
        self.manager = manager
        self.top_rooms = top_rooms
        self.prepared: RoomTotals | None = None
        """This node's rooms, walked by :func:`prepare` without holding the loop."""

    def _rooms(self) -> RoomTotals:
        prepared, self.prepared = self.prepared, None
        if prepared is not None:
            return prepared
        rooms = self.manager.local_stats()["rooms"]  # collected outside the admin view
        largest = sorted(rooms.items(), key=lambda item: (-item[1], item[0]))[: self.top_rooms]
        return {"top": largest, "rooms": len(rooms), "memberships": sum(rooms.values())}

    def collect(self) -> Iterator[Metric]:
        """Build every metric from one read of the manager."""
        # This node's own figures even in a cluster: Prometheus sums over its targets.
        rooms = self._rooms()
        stats = hub_totals(self.manager)
        counters = self.manager.counters
        yield GaugeMetricFamily(
            "lucent_ws_connections", "Open WebSocket connections.", value=len(self.manager)
        )
        yield GaugeMetricFamily(
            "lucent_ws_rooms", "Rooms with at least one member.", rooms["rooms"]
        )
        members = GaugeMetricFamily(
            "lucent_ws_room_members",
            f"Members of the {self.top_rooms} largest rooms.",
            labels=["room"],
        )
        for name, count in rooms["top"]:
            members.add_metric([name], count)
        yield members
        yield GaugeMetricFamily(
            "lucent_ws_heartbeat_active",
            "1 while the heartbeat timer runs.",
            value=1 if stats["heartbeatActive"] else 0,
        )
        yield CounterMetricFamily(
            "lucent_ws_messages_in", "Messages received from clients.", counters.messages_in
        )
        yield CounterMetricFamily(
            "lucent_ws_messages_out", "Messages queued for clients.", counters.messages_out
        )
        yield CounterMetricFamily(
            "lucent_ws_bytes_out", "WebSocket frame bytes queued for clients.", counters.bytes_out
        )
        evictions = CounterMetricFamily(
            "lucent_ws_evictions", "Connections closed by the server, by reason.", labels=["reason"]
        )
        for reason in sorted({*EvictionReason, *counters.evictions}):
            evictions.add_metric([reason], counters.evictions.get(reason, 0))
        yield evictions
        refusals = CounterMetricFamily(
            "lucent_ws_handshake_refusals",
            "Handshakes refused before the upgrade, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(counters.handshake_refusals.items()):
            refusals.add_metric([reason], count)
        yield refusals
        yield GaugeMetricFamily(
            "lucent_ws_uptime_seconds", "Seconds since the manager started.", stats["uptime"]
        )
        cluster = self.manager.cluster.cluster_stats()
        if cluster is not None:
            yield GaugeMetricFamily(
                "lucent_ws_broker_up", "1 while the scale-out broker is connected.",
                value=1 if cluster["broker"] == "up" else 0,
            )  # fmt: skip
            yield CounterMetricFamily(
                "lucent_ws_broker_undelivered",
                "Messages not handed to other nodes (broker unavailable or backlogged).",
                cluster["undelivered"],
            )


def make_registry(manager: WebSocketManager, *, top_rooms: int = 20) -> CollectorRegistry:
    """A private registry holding only the hub's collector."""
    registry = CollectorRegistry(auto_describe=False)
    collector = HubCollector(manager, top_rooms=top_rooms)
    registry.register(collector)
    _COLLECTORS[registry] = collector
    return registry


async def prepare(registry: CollectorRegistry, manager: WebSocketManager) -> None:
    """Walk this node's rooms a slice per loop tick before :func:`render` (see ``.rooms``)."""
    collector = _COLLECTORS.get(registry)
    if collector is not None:
        collector.prepared = await room_totals(manager, collector.top_rooms, local=True)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text exposition format."""
    return generate_latest(registry)
