"""marshmallow schemas of every admin API request and response body.

The views validate requests and dump responses with these, and the OpenAPI
document is generated from the same classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ..protocol import MAX_ROOM_LENGTH, Rule, check_room
from ..stats import NodeStats, Stats
from .typed_schemas import schema_from_typeddict

__all__ = [
    "AdminStats",
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
    "PoliciesSchema",
    "PolicySchema",
    "PresenceEntrySchema",
    "PresenceSchema",
    "RoomDetailSchema",
    "RoomHistoryQuerySchema",
    "RoomHistorySchema",
    "RoomListSchema",
    "RoomMemberSchema",
    "RoomSummarySchema",
    "SendRequestSchema",
    "StatsQuerySchema",
    "StatsSchema",
    "ValidationErrorSchema",
    "room_field",
]


def _validator(rule: Rule) -> Callable[[Any], None]:
    """A wire-protocol rule as a marshmallow validator (same messages, one per problem)."""

    def validate_rule(value: Any) -> None:
        errors = rule(value)
        if errors:
            raise ValidationError(list(errors))

    return validate_rule


def room_field(*, required: bool = True, **kwargs: Any) -> fields.String:
    """A ``room`` field: the wire protocol's room rule (:func:`~lucent_ws.protocol.check_room`)."""
    metadata = {"minLength": 1, "maxLength": MAX_ROOM_LENGTH, **kwargs.pop("metadata", {})}
    return fields.String(
        required=required, validate=_validator(check_room), metadata=metadata, **kwargs
    )


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


NodeStatsSchema = schema_from_typeddict(NodeStats, descriptions={"self": "the node answering"})


class AdminStats(Stats):
    """``GET /stats``: the hub's stats with the largest rooms only, plus room totals."""

    roomCount: int
    memberships: int


StatsSchema = schema_from_typeddict(
    AdminStats,
    descriptions={
        "rooms": "the `top` largest rooms and their member counts",
        "roomCount": "rooms with members",
        "memberships": "member counts summed over every room",
        "uptime": "seconds since start",
        "node": "this node's id (scale-out only)",
        "broker": "up or down (scale-out only)",
        "undelivered": "messages not handed to other nodes (scale-out only)",
        "nodes": "each live node's own figures (scale-out only)",
    },
)


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


class PresenceEntrySchema(Schema):
    """One connection of a presence key, with the policy's ``presence_info`` keys."""

    id = fields.String(required=True)
    info = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class PresenceSchema(Schema):
    """A presence room's members by user (``userId``, else the connection id)."""

    room = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "connections"})
    members = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Nested(PresenceEntrySchema)),
        required=True,
    )


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


class BroadcastRequestSchema(Schema):
    """``POST /broadcast``: ``payload`` to ``room``'s members, or to everyone without ``room``."""

    room = room_field(required=False, metadata={"description": "omit to reach everyone"})
    payload = fields.Raw(required=True, allow_none=True, metadata={"description": "any JSON"})
    excluded = fields.List(
        fields.String(),
        load_default=list,
        data_key="exclude",
        metadata={"description": "connection ids to skip"},
    )


class SendRequestSchema(Schema):
    """``POST /send``: ``payload`` to one connection."""

    id = fields.String(required=True, validate=validate.Length(min=1))
    payload = fields.Raw(required=True, allow_none=True, metadata={"description": "any JSON"})


class DeliveredSchema(Schema):
    """How many connections the payload was queued for."""

    delivered = fields.Integer(required=True)
    offset = fields.Integer(metadata={"description": "its offset (rooms with history only)"})
    epoch = fields.String(metadata={"description": "its room's epoch (rooms with history only)"})


class RoomHistoryQuerySchema(Schema):
    """Query of ``GET /rooms/{room}/history``."""

    limit = fields.Integer(
        validate=validate.Range(min=1, max=10_000),
        metadata={"description": "at most this many (after `since`: the oldest; else the newest)"},
    )
    since = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "only the messages after this offset (needs `epoch`)"},
    )
    epoch = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the epoch `since` belongs to; another one means every kept"},
    )


class RoomHistorySchema(Schema):
    """A room's kept messages, oldest first, as v2 clients receive them."""

    room = fields.String(required=True)
    epoch = fields.String(required=True)
    offset = fields.Integer(required=True, metadata={"description": "the room's top offset"})
    messages = fields.List(fields.Dict(), required=True)


class DisconnectedSchema(Schema):
    """Answer of ``DELETE /connections/{id}``."""

    disconnected = fields.Boolean(required=True)


class PolicySchema(Schema):
    """A room policy (:class:`~lucent_ws.policy.RoomPolicy`)."""

    pattern = fields.String(
        required=True, metadata={"description": "an exact room name, or a prefix ending in `*`"}
    )
    presence = fields.Boolean(required=True, metadata={"description": "members may ask who is in"})
    join_leave = fields.Boolean(required=True, metadata={"description": "send presence diffs"})
    presence_info = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "metadata keys members may see of each other"},
    )
    history_size = fields.Integer(required=True, metadata={"description": "0: no history"})
    history_ttl = fields.Float(required=True, metadata={"description": "seconds"})
    client_publish = fields.String(
        required=True,
        validate=validate.OneOf(["members", "none"]),
        metadata={"description": "`none`: a client's broadcast gets `publish_forbidden`"},
    )
    max_members = fields.Integer(required=True, metadata={"description": "0: no limit"})


class PoliciesSchema(Schema):
    """The room policies, exact names first, then prefixes longest first; and the default."""

    policies = fields.List(fields.Nested(PolicySchema), required=True)
    default = fields.Nested(
        PolicySchema, required=True, metadata={"description": "what an unmatched room gets"}
    )
