"""The local registry: this node's connections and the rooms they are in.

Pure bookkeeping, no I/O: who is connected and who is in which room. Sending
is the outbox's job, cross-node membership the cluster's.
"""

from __future__ import annotations

from .connection import Connection

__all__ = ["Hub"]


class Hub:
    """Connections by id and rooms by name; a room exists while it has members."""

    __slots__ = ("connections", "rooms")

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.rooms: dict[str, dict[str, Connection]] = {}

    def add(self, conn: Connection) -> None:
        """Register a new connection."""
        self.connections[conn.id] = conn

    def remove(self, conn_id: str) -> Connection | None:
        """Unregister a connection and take it out of every room; None if unknown."""
        conn = self.connections.pop(conn_id, None)
        if conn is None:
            return None
        conn.closed = True
        for room in conn.rooms:
            members = self.rooms.get(room)
            if members is not None:
                members.pop(conn_id, None)
                if not members:
                    del self.rooms[room]
        return conn

    def join(self, conn: Connection, room: str) -> bool:
        """Add ``conn`` to ``room``; False if it is already a member."""
        if room in conn.rooms:
            return False
        members = self.rooms.get(room)
        if members is None:
            members = self.rooms[room] = {}
        members[conn.id] = conn
        conn.rooms.add(room)
        return True

    def leave(self, conn: Connection, room: str) -> bool:
        """Take ``conn`` out of ``room``; False if it was not a member."""
        if room not in conn.rooms:
            return False
        conn.rooms.discard(room)
        members = self.rooms[room]
        del members[conn.id]
        if not members:
            del self.rooms[room]
        return True
