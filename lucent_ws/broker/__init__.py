"""Scale-out: nodes share rooms, direct sends and kicks through a storage backend.

:class:`Broker` is the generic cluster (:class:`~lucent_ws.cluster.Cluster`):
membership replication, leases, ordered publishing, outage handling, and
history rooms numbered by the backend (:mod:`lucent_ws.broker.history`). It runs
over any :class:`Backend` (a bus, per-node hashes, leases, a set of node ids
and a history stream per room). Shipped backends:
:class:`~lucent_ws.broker.redis.RedisBackend` (the ``redis`` extra;
``RedisBroker(url)`` for short), imported only when used, and
:class:`~lucent_ws.broker.memory.MemoryBackend`, several nodes in one process.
"""

from __future__ import annotations

from ..replica import ClusterView, Record, RemoteConnection
from ..stats import ClusterStats, NodeStats
from .backend import Appended, Backend, HistoryAppend, NodeState, StreamEntry, StreamRead, Writes
from .replication import Broker

__all__ = [
    "Appended",
    "Backend",
    "Broker",
    "ClusterStats",
    "ClusterView",
    "HistoryAppend",
    "NodeState",
    "NodeStats",
    "Record",
    "RemoteConnection",
    "StreamEntry",
    "StreamRead",
    "Writes",
]
