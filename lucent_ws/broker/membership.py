"""How a node's membership and figures are written to a backend. Pure, no I/O.

The stored form (:mod:`lucent_ws.broker.wire`): one hash field per connection
(id -> metadata) and one per membership (id and room -> empty), so each change
writes a field or two whatever else the connection is in.
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import jsoncodec
from ..connection import Connection
from ..replica import GONE, JOIN, LEAVE, Change, NodeView
from ..stats import NodeStats, Stats
from . import wire
from .backend import Writes

__all__ = ["lease_value", "own_figures", "remote_figures", "snapshot_fields", "write_changes"]


def snapshot_fields(connections: Iterable[Connection | None]) -> dict[str, bytes]:
    """The hash fields of a node's whole membership."""
    fields: dict[str, bytes] = {}
    for conn in connections:
        if conn is not None:
            fields[conn.id] = wire.encode_meta(conn.meta)
            for room in conn.rooms:
                fields[wire.room_field(conn.id, room)] = b""
    return fields


def write_changes(writes: Writes, changes: list[Change], seq: int) -> None:
    """Add ``changes`` to ``writes``: their net hash fields and one ``conn`` bus message."""
    # The last change of each field wins; the bus carries every change in order,
    # metadata encoded once for both.
    fields: dict[str, bytes | None] = {}
    published: list[Change] = []
    for op, conn_id, arg in changes:
        if op == JOIN:
            fields[wire.room_field(conn_id, arg)] = b""
        elif op == LEAVE:
            fields[wire.room_field(conn_id, arg)] = None
        elif op == GONE:
            fields[conn_id] = None
            for room in arg:
                fields[wire.room_field(conn_id, room)] = None
            arg = None
        else:  # CONNECT, META
            arg = fields[conn_id] = wire.encode_meta(arg)
        published.append((op, conn_id, arg))
    writes.del_fields = [name for name, value in fields.items() if value is None]
    writes.set_fields = {name: value for name, value in fields.items() if value is not None}
    writes.seq = seq
    body = wire.encode_changes(published)
    writes.messages.append(wire.encode(writes.node, wire.CONN, body, s=seq))


def own_figures(stats: Stats, undelivered: int) -> NodeStats:
    """This node's entry in ``stats["nodes"]``."""
    return {
        "connections": stats["connections"],
        "rooms": len(stats["rooms"]),
        "messagesIn": stats["messagesIn"],
        "messagesOut": stats["messagesOut"],
        "bytesOut": stats["bytesOut"],
        "undelivered": undelivered,
        "uptime": stats["uptime"],
        "self": True,
    }


def lease_value(figures: NodeStats) -> bytes:
    """What a node stores in its lease: its figures, for the others' stats."""
    return jsoncodec.dumps({key: value for key, value in figures.items() if key != "self"})


def remote_figures(node: NodeView) -> NodeStats:
    """Another node's entry in ``stats["nodes"]``, from its replica and lease."""
    figures = node.stats
    return {
        "connections": len(node.records),
        "rooms": len(node.rooms),
        "messagesIn": int(figures.get("messagesIn", 0)),
        "messagesOut": int(figures.get("messagesOut", 0)),
        "bytesOut": int(figures.get("bytesOut", 0)),
        "undelivered": int(figures.get("undelivered", 0)),
        "uptime": float(figures.get("uptime", 0.0)),
        "self": False,
    }
