"""marshmallow schemas of every admin API request and response body.

The views validate requests and dump responses with these, and the OpenAPI
document is generated from the same classes.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..protocol import is_room, room_field

__all__ = [
    "BroadcastRequestSchema",
    "ConnectionDetailSchema",
    "ConnectionListQuerySchema",
    "ConnectionListSchema",
    "ConnectionSummarySchema",
    "DeliveredSchema",
    "DisconnectedSchema",
    "ErrorSchema",
    "HistorySampleSchema",
    "HistorySchema",
    "PageQuerySchema",
    "QuickSchema",
    "RoomDetailSchema",
    "RoomListSchema",
    "RoomMemberSchema",
    "RoomSummarySchema",
    "SendRequestSchema",
    "StatsQuerySchema",
    "StatsSchema",
    "ValidationErrorSchema",
]


class ErrorSchema(Schema):
    """Any error: a machine-readable code and a human message."""

    error = fields.String(required=True, metadata={"example": "not_found"})
    message = fields.String(required=True)


class ValidationErrorSchema(Schema):
    """422: the body has the wrong shape; messages per field."""

    error = fields.String(required=True, metadata={"example": "invalid_body"})
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        required=True,
        data_key="fields",
        metadata={"example": {"payload": ["Missing data for required field."]}},
    )


class NodeStatsSchema(Schema):
    """One node's own figures in a cluster."""

    connections = fields.Integer(required=True)
    rooms = fields.Integer(required=True)
    messagesIn = fields.Integer(required=True)
    messagesOut = fields.Integer(required=True)
    bytesOut = fields.Integer(required=True)
    undelivered = fields.Integer(required=True)
    uptime = fields.Float(required=True)
    self = fields.Boolean(required=True, metadata={"description": "the node answering"})


class StatsQuerySchema(Schema):
    """Query of ``GET /stats``."""

    top = fields.Integer(
        validate=validate.Range(min=0, max=1000),
        metadata={"description": "how many of the largest rooms to list (default 20)"},
    )


class PageQuerySchema(Schema):
    """Query of the paginated listings: ``GET /rooms`` and ``GET /rooms/{room}``."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = fields.String(
        metadata={"description": "the previous page's `next`; omit for the first page"}
    )


class StatsSchema(Schema):
    """Hub totals, as ``WebSocketManager.get_stats()``, with the largest rooms only."""

    connections = fields.Integer(required=True)
    rooms = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "the `top` largest rooms and their member counts"},
    )
    roomCount = fields.Integer(required=True, metadata={"description": "rooms with members"})
    memberships = fields.Integer(
        required=True, metadata={"description": "member counts summed over every room"}
    )
    heartbeatActive = fields.Boolean(required=True)
    messagesIn = fields.Integer(required=True)
    messagesOut = fields.Integer(required=True)
    bytesOut = fields.Integer(required=True)
    evictions = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    handshakeRefusals = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    uptime = fields.Float(required=True, metadata={"description": "seconds since start"})
    node = fields.String(metadata={"description": "this node's id (scale-out only)"})
    broker = fields.String(metadata={"description": "up or down (scale-out only)"})
    undelivered = fields.Integer(
        metadata={"description": "messages not handed to other nodes (scale-out only)"}
    )
    nodes = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(NodeStatsSchema),
        metadata={"description": "each live node's own figures (scale-out only)"},
    )


class HistorySampleSchema(Schema):
    """One sample of the recent history."""

    t = fields.Float(required=True, metadata={"description": "Unix time, seconds"})
    connections = fields.Integer(required=True)
    messagesInPerSec = fields.Float(required=True)
    messagesOutPerSec = fields.Float(required=True)


class HistorySchema(Schema):
    """Connections and message rates over the last minutes, oldest first."""

    interval = fields.Float(required=True, metadata={"description": "seconds between samples"})
    samples = fields.List(fields.Nested(HistorySampleSchema), required=True)


class RoomSummarySchema(Schema):
    """A room and its member count."""

    name = fields.String(required=True)
    members = fields.Integer(required=True)


class RoomListSchema(Schema):
    """One page of the rooms with at least one member, by name."""

    rooms = fields.List(fields.Nested(RoomSummarySchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "rooms in all pages"})
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "cursor of the next page; null on the last one"},
    )


class RoomMemberSchema(Schema):
    """A member of a room and its metadata."""

    id = fields.String(required=True)
    meta = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class RoomDetailSchema(Schema):
    """One page of a room's members, by id."""

    name = fields.String(required=True)
    members = fields.List(fields.Nested(RoomMemberSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "members in all pages"})
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "cursor of the next page; null on the last one"},
    )


class ConnectionSummarySchema(Schema):
    """A connection in the connection list."""

    id = fields.String(required=True)
    rooms = fields.List(fields.String(), required=True)
    remote = fields.String(allow_none=True, required=True)
    connectedAt = fields.String(required=True, metadata={"description": "ISO 8601, UTC"})


class ConnectionListQuerySchema(Schema):
    """Query of ``GET /connections``."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ConnectionListSchema(Schema):
    """The newest connections (at most ``limit``) and the total."""

    total = fields.Integer(required=True)
    connections = fields.List(fields.Nested(ConnectionSummarySchema), required=True)


class ConnectionDetailSchema(ConnectionSummarySchema):
    """One connection: rooms, metadata, peer address and age (never credentials)."""

    meta = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    connectedFor = fields.Float(required=True, metadata={"description": "seconds"})
    idleFor = fields.Float(
        required=True, metadata={"description": "seconds since the client was last heard"}
    )


class QuickSchema(Schema):
    """A request body schema with a fast path for bodies that are plainly valid.

    Validating with marshmallow costs more than the rest of a small admin request; the
    fast path checks the common shape directly and leaves anything else (and every error
    message) to :meth:`load`. The tests check the two agree on generated bodies.
    """

    def quick_load(self, data: Any) -> dict[str, Any] | None:
        """What ``load(data)`` returns if ``data`` is plainly valid, else None."""
        return None


_BROADCAST_KEYS = frozenset({"room", "payload", "exclude"})
_SEND_KEYS = frozenset({"id", "payload"})


class BroadcastRequestSchema(QuickSchema):
    """``POST /broadcast``: ``payload`` to ``room``'s members, or to everyone without ``room``."""

    room = room_field(required=False, metadata={"description": "omit to reach everyone"})
    payload = fields.Raw(required=True, allow_none=True, metadata={"description": "any JSON"})
    excluded = fields.List(
        fields.String(),
        load_default=list,
        data_key="exclude",
        metadata={"description": "connection ids to skip"},
    )

    def quick_load(self, data: Any) -> dict[str, Any] | None:
        """What ``load(data)`` returns if ``data`` is plainly valid, else None."""
        if type(data) is not dict or "payload" not in data or not data.keys() <= _BROADCAST_KEYS:
            return None
        exclude = data.get("exclude", [])
        if type(exclude) is not list or not all(type(item) is str for item in exclude):
            return None
        loaded = {"payload": data["payload"], "excluded": list(exclude)}
        if "room" in data:
            if not is_room(data["room"]):
                return None
            loaded["room"] = data["room"]
        return loaded


class SendRequestSchema(QuickSchema):
    """``POST /send``: ``payload`` to one connection."""

    id = fields.String(required=True, validate=validate.Length(min=1))
    payload = fields.Raw(required=True, allow_none=True, metadata={"description": "any JSON"})

    def quick_load(self, data: Any) -> dict[str, Any] | None:
        """What ``load(data)`` returns if ``data`` is plainly valid, else None."""
        if type(data) is not dict or data.keys() != _SEND_KEYS:
            return None
        conn_id = data["id"]
        if type(conn_id) is not str or not conn_id:
            return None
        return {"id": conn_id, "payload": data["payload"]}


class DeliveredSchema(Schema):
    """How many connections the payload was queued for."""

    delivered = fields.Integer(required=True)


class DisconnectedSchema(Schema):
    """Answer of ``DELETE /connections/{id}``."""

    disconnected = fields.Boolean(required=True)
