"""Fan-out to this node's connections: one frame per protocol version (pure).

Every application payload reaches a local connection through here, from the
host, a client broadcast or another node. A broadcast frames its payload once
for the room's v1 members and once for its v2 members (once in all when both
get the same bytes), then hands the frames to the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from .connection import Connection
from .envelope import V2, RoomMessage, direct_v2
from .frames import text_frame
from .hub import Hub
from .outbox import Outbox

__all__ = ["Delivery", "as_exclude_set"]

_NO_EXCLUDE: Final[frozenset[str]] = frozenset()


class Delivery:
    """Local deliveries of rooms, everyone and single connections."""

    __slots__ = ("_hub", "_outbox")

    def __init__(self, hub: Hub, outbox: Outbox) -> None:
        self._hub = hub
        self._outbox = outbox

    def room(self, message: RoomMessage, exclude: Iterable[str] = ()) -> int:
        """Queue ``message`` for the room's local members but ``exclude``; the count."""
        hub, fanout = self._hub, self._outbox.fanout
        members = hub.rooms.get(message.room)
        if not members:
            return 0
        v2 = hub.v2_rooms.get(message.room)
        if v2 is None or message.same_for_all:
            frame = text_frame(message.v1() if v2 is None else message.v2())
            return fanout(members.values(), frame, _present(members, exclude))
        count = fanout(v2.values(), text_frame(message.v2()), _present(v2, exclude))
        if len(v2) < len(members):
            v1 = {conn_id: c for conn_id, c in members.items() if c.version != V2}
            count += fanout(v1.values(), text_frame(message.v1()), _present(v1, exclude))
        return count

    def everyone(self, payload: bytes, exclude: Iterable[str] = ()) -> int:
        """Queue encoded JSON for every local connection but ``exclude``; the count."""
        hub, fanout = self._hub, self._outbox.fanout
        connections = hub.connections
        if not connections:
            return 0
        v2 = hub.v2
        if not v2:
            return fanout(connections.values(), text_frame(payload), _present(connections, exclude))
        count = fanout(v2.values(), text_frame(direct_v2(payload)), _present(v2, exclude))
        if len(v2) < len(connections):
            v1 = {conn_id: c for conn_id, c in connections.items() if c.version != V2}
            count += fanout(v1.values(), text_frame(payload), _present(v1, exclude))
        return count

    def v2(self, data: bytes) -> int:
        """Queue encoded JSON, as it is, for every local v2 connection; the count."""
        v2 = self._hub.v2
        if not v2:
            return 0
        return self._outbox.fanout(v2.values(), text_frame(data), [])

    def direct(self, conn_id: str, payload: bytes) -> bool:
        """Queue encoded JSON for one local connection; False if it is not here or closed."""
        conn = self._hub.connections.get(conn_id)
        if conn is None or conn.closed:
            return False
        self._outbox.send(conn, text_frame(direct_v2(payload) if conn.version == V2 else payload))
        return True


def _present(members: Mapping[str, Connection], exclude: Iterable[str]) -> list[Connection]:
    """The connections of ``members`` that ``exclude`` names, each once."""
    if not exclude:
        return []
    return [members[conn_id] for conn_id in set(exclude) if conn_id in members]


def as_exclude_set(exclude: Iterable[str]) -> frozenset[str]:
    """Connection ids to skip, as a frozenset (the shared empty one for none)."""
    if not exclude:
        return _NO_EXCLUDE
    return exclude if isinstance(exclude, frozenset) else frozenset(exclude)
