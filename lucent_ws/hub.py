"""The local registry: this node's connections and the rooms they are in.

Pure bookkeeping, no I/O: who is connected and who is in which room, with the
v2 connections also indexed apart so a broadcast frames each version once.
Sending is the outbox's job, cross-node membership the cluster's.
"""

from __future__ import annotations

from .connection import Connection
from .envelope import V2

__all__ = ["Hub"]


class Hub:
    """Connections by id and rooms by name; a room exists while it has members.

    ``v2`` and ``v2_rooms`` hold the subsets that speak protocol v2 (a room's
    entry exists while it has a v2 member).
    """

    __slots__ = ("connections", "rooms", "v2", "v2_rooms")

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.rooms: dict[str, dict[str, Connection]] = {}
        self.v2: dict[str, Connection] = {}
        self.v2_rooms: dict[str, dict[str, Connection]] = {}

    def add(self, conn: Connection) -> None:
        """Register a new connection."""
        self.connections[conn.id] = conn
        if conn.version == V2:
            self.v2[conn.id] = conn

    def remove(self, conn_id: str) -> Connection | None:
        """Unregister a connection and take it out of every room; None if unknown."""
        conn = self.connections.pop(conn_id, None)
        if conn is None:
            return None
        conn.closed = True
        self.v2.pop(conn_id, None)
        for room in conn.rooms:
            _discard(self.rooms, room, conn_id)
            if conn.version == V2:
                _discard(self.v2_rooms, room, conn_id)
        return conn

    def join(self, conn: Connection, room: str) -> bool:
        """Add ``conn`` to ``room``; False if it is already a member."""
        if room in conn.rooms:
            return False
        self.rooms.setdefault(room, {})[conn.id] = conn
        if conn.version == V2:
            self.v2_rooms.setdefault(room, {})[conn.id] = conn
        conn.rooms.add(room)
        return True

    def leave(self, conn: Connection, room: str) -> bool:
        """Take ``conn`` out of ``room``; False if it was not a member."""
        if room not in conn.rooms:
            return False
        conn.rooms.discard(room)
        _discard(self.rooms, room, conn.id)
        if conn.version == V2:
            _discard(self.v2_rooms, room, conn.id)
        return True


def _discard(rooms: dict[str, dict[str, Connection]], room: str, conn_id: str) -> None:
    members = rooms.get(room)
    if members is not None:
        members.pop(conn_id, None)
        if not members:
            del rooms[room]
