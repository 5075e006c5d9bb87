"""The replicated view of the other nodes of a cluster: who is connected where, in which rooms.

Pure state, no I/O. A cluster feeds it two kinds of updates per node:

- snapshots (the node's whole membership, read from the shared store), and
- changes (what a node published since: a connection opened, left, joined or
  left a room, or changed its metadata), each batch carrying the node's
  sequence number, which grows with every membership write of that node.

A snapshot with sequence ``S`` already contains every change up to ``S``, so
changes at or below the view's sequence are ignored and a snapshot older than
what the view has seen is ignored too. A batch that skips a number means
something was missed: it is applied (each change is idempotent) and the node is
reported as needing a fresh snapshot.

Each node is held under a lease: it disappears from the view when its lease
runs out, whether or not anyone cleans up after it. Reads drop expired nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CONNECT",
    "GONE",
    "JOIN",
    "LEAVE",
    "META",
    "Change",
    "ClusterView",
    "NodeView",
    "Record",
    "RemoteConnection",
]

CONNECT: Final = "c"
"""``(CONNECT, id, meta)``: a connection opened."""
META: Final = "m"
"""``(META, id, meta)``: its metadata changed."""
JOIN: Final = "j"
"""``(JOIN, id, room)``: it joined a room."""
LEAVE: Final = "l"
"""``(LEAVE, id, room)``: it left a room."""
GONE: Final = "x"
"""``(GONE, id, None)``: it closed."""

Change = tuple[str, str, Any]
"""One membership change: an operation, a connection id and its argument."""


@dataclass(frozen=True, slots=True)
class Record:
    """One connection's membership in a snapshot."""

    rooms: Collection[str] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteConnection:
    """A connection held by another node."""

    id: str
    node: str
    rooms: tuple[str, ...]
    meta: Mapping[str, Any]


@dataclass(slots=True)
class _Entry:
    rooms: set[str] = field(default_factory=set)
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class NodeView:
    """What this node knows about one other node."""

    node_id: str
    seq: int = -1
    expires_at: float = 0.0
    synced: bool = False
    stats: Mapping[str, Any] = field(default_factory=dict)
    records: dict[str, _Entry] = field(default_factory=dict)
    rooms: dict[str, set[str]] = field(default_factory=dict)

    def apply(self, op: str, conn_id: str, arg: Any) -> Iterable[str]:
        """Apply one :data:`Change`; returns the rooms it touched (unknown operations: none)."""
        if op in (JOIN, LEAVE):
            entry = self.records.get(conn_id)
            if entry is None:
                if op == LEAVE:
                    return ()
                entry = self.records[conn_id] = _Entry()
            if op == JOIN:
                entry.rooms.add(arg)
                self.rooms.setdefault(arg, set()).add(conn_id)
            else:
                entry.rooms.discard(arg)
                self._unindex(conn_id, arg)
            return (arg,)
        if op in (CONNECT, META):
            entry = self.records.get(conn_id)
            if entry is None:
                entry = self.records[conn_id] = _Entry()
            entry.meta = arg if isinstance(arg, Mapping) else {}
            return entry.rooms
        if op == GONE:
            gone = self.records.pop(conn_id, None)
            if gone is not None:
                for room in gone.rooms:
                    self._unindex(conn_id, room)
                return gone.rooms
        return ()

    def _unindex(self, conn_id: str, room: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.discard(conn_id)
            if not members:
                del self.rooms[room]


class ClusterView:
    """Membership of every other live node, as last replicated."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes: dict[str, NodeView] = {}
        self._clock = clock
        self.on_rooms_changed: Callable[[Iterable[str]], None] | None = None
        """Called with the rooms whose remote membership changed (presence listens)."""

    def _changed(self, rooms: Iterable[str]) -> None:
        listener = self.on_rooms_changed
        if listener is not None:
            listener(rooms)

    # --- updates -------------------------------------------------------------------

    def _node(self, node_id: str) -> NodeView:
        node = self._nodes.get(node_id)
        if node is None:
            node = self._nodes[node_id] = NodeView(node_id)
        return node

    def apply_snapshot(
        self,
        node_id: str,
        seq: int,
        records: Mapping[str, Record],
        ttl: float,
        stats: Mapping[str, Any] | None = None,
    ) -> bool:
        """Replace a node's membership with a snapshot taken at ``seq``.

        ``ttl`` is what remains of the node's lease, in seconds. Returns False
        (and only renews the lease) if the view has already seen newer changes.
        """
        node = self._node(node_id)
        node.expires_at = self._clock() + ttl
        if stats is not None:
            node.stats = stats
        if seq < node.seq:
            return False
        node.seq = seq
        node.synced = True
        touched = set(node.rooms)
        node.records = {}
        node.rooms = {}
        for conn_id, record in records.items():
            node.apply(CONNECT, conn_id, record.meta)
            for room in record.rooms:
                node.apply(JOIN, conn_id, room)
        self._changed(touched | set(node.rooms))
        return True

    def apply_changes(self, node_id: str, seq: int, changes: Iterable[Change], ttl: float) -> bool:
        """Apply the changes a node published at ``seq``, in order.

        Returns True when the node needs a fresh snapshot: it was not known
        yet, or a sequence number was skipped.
        """
        node = self._node(node_id)
        if seq <= node.seq:
            return False
        gap = not node.synced or seq != node.seq + 1
        node.seq = seq
        node.expires_at = max(node.expires_at, self._clock() + ttl)
        touched: set[str] = set()
        for op, conn_id, arg in changes:
            touched.update(node.apply(op, conn_id, arg))
        if touched:
            self._changed(touched)
        return gap

    def renew(self, node_id: str, ttl: float, stats: Mapping[str, Any] | None = None) -> None:
        """Extend a known node's lease (and refresh its figures)."""
        node = self._nodes.get(node_id)
        if node is not None:
            node.expires_at = self._clock() + ttl
            if stats is not None:
                node.stats = stats

    def drop(self, node_id: str) -> bool:
        """Forget a node (it left or its lease is gone); True if it was known."""
        node = self._nodes.pop(node_id, None)
        if node is None:
            return False
        if node.rooms:
            self._changed(list(node.rooms))
        return True

    def clear(self) -> None:
        """Forget every node."""
        for node_id in list(self._nodes):
            self.drop(node_id)

    def suspend(self) -> None:
        """Mark every node unconfirmed until its next snapshot (after a broker outage).

        Suspended nodes still answer membership and presence reads, so a rebuild
        announces no leave and join for members that never left; they are left out
        of the counts of :meth:`room_size`, :meth:`room_sizes` and
        :meth:`connection_count`, so no delivery to them is claimed meanwhile.
        """
        for node in self._nodes.values():
            node.synced = False

    # --- reads -----------------------------------------------------------------------

    def nodes(self) -> list[NodeView]:
        """Every node whose lease has not run out (expired ones are dropped)."""
        if not self._nodes:
            return []
        now = self._clock()
        expired = [n for n, view in self._nodes.items() if view.expires_at <= now]
        for node_id in expired:
            self.drop(node_id)
        return list(self._nodes.values())

    def node_ids(self) -> list[str]:
        """Ids of every live node."""
        return [node.node_id for node in self.nodes()]

    def room_members(self, room: str) -> list[str]:
        """Ids of the room's members on other nodes."""
        members: list[str] = []
        for node in self.nodes():
            ids = node.rooms.get(room)
            if ids:
                members.extend(ids)
        return members

    def room_records(self, room: str) -> list[tuple[str, Mapping[str, Any]]]:
        """The room's members on other nodes, each with its metadata (presence reads it)."""
        members: list[tuple[str, Mapping[str, Any]]] = []
        for node in self.nodes():
            ids = node.rooms.get(room)
            if ids:
                records = node.records
                members.extend((conn_id, records[conn_id].meta) for conn_id in ids)
        return members

    def expires_in(self) -> float | None:
        """Seconds until the first node's lease runs out (None: no node known)."""
        if not self._nodes:
            return None
        first = min(node.expires_at for node in self._nodes.values())
        return max(0.0, first - self._clock())

    def suspended(self, node_id: str) -> bool:
        """True for a known node not confirmed since an outage (see :meth:`suspend`)."""
        node = self._nodes.get(node_id)
        return node is not None and not node.synced

    def room_size(self, room: str, exclude: Collection[str] = ()) -> int:
        """Members of ``room`` on other nodes, not counting ``exclude``."""
        count = 0
        for node in self.nodes():
            ids = node.rooms.get(room) if node.synced else None
            if ids:
                count += len(ids)
                if exclude:
                    count -= sum(1 for conn_id in exclude if conn_id in ids)
        return count

    def room_sizes(self) -> dict[str, int]:
        """Every room with members on other nodes, with their number."""
        sizes: dict[str, int] = {}
        for node in self.nodes():
            if not node.synced:
                continue
            for room, ids in node.rooms.items():
                sizes[room] = sizes.get(room, 0) + len(ids)
        return sizes

    def connection_count(self, exclude: Iterable[str] = ()) -> int:
        """Connections on other nodes, not counting ``exclude``."""
        nodes = [node for node in self.nodes() if node.synced]
        count = sum(len(node.records) for node in nodes)
        for conn_id in exclude:
            if any(conn_id in node.records for node in nodes):
                count -= 1
        return count

    def connection(self, conn_id: str) -> RemoteConnection | None:
        """The connection with this id on another live node, or None."""
        for node in self.nodes():
            entry = node.records.get(conn_id)
            if entry is not None:
                return RemoteConnection(
                    conn_id, node.node_id, tuple(sorted(entry.rooms)), entry.meta
                )
        return None

    def connection_ids(self) -> list[str]:
        """Ids of every connection on other nodes."""
        ids: list[str] = []
        for node in self.nodes():
            ids.extend(node.records)
        return ids
