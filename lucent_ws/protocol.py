"""The JSON wire protocol: parsing client messages and encoding server messages.

Pure: no I/O, no aiohttp. :func:`parse` turns a text frame into one of the
client message classes or raises :class:`~lucent_ws.errors.ProtocolError`
carrying the error code and text to send back. The ``encode_*`` functions
return the UTF-8 JSON of each server message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeGuard

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from . import jsoncodec
from .errors import ProtocolError

__all__ = [
    "MAX_PAYLOAD_DEPTH",
    "MAX_REF_LENGTH",
    "MAX_ROOM_LENGTH",
    "Broadcast",
    "ClientMessage",
    "ErrorCode",
    "Join",
    "Leave",
    "Ping",
    "Pong",
    "Ref",
    "encode_ack",
    "encode_connected",
    "encode_error",
    "encode_joined",
    "encode_left",
    "encode_message",
    "encode_pong",
    "is_room",
    "parse",
    "peek_ref",
]

Ref = int | str
MAX_ROOM_LENGTH: Final = 128
MAX_REF_LENGTH: Final = 64
MAX_PAYLOAD_DEPTH: Final = 128
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ErrorCode:
    """The error codes of ``{"type": "error", "code": ...}`` replies."""

    INVALID_JSON: Final = "invalid_json"
    INVALID_MESSAGE: Final = "invalid_message"
    UNKNOWN_TYPE: Final = "unknown_type"
    FORBIDDEN: Final = "forbidden"
    NOT_MEMBER: Final = "not_member"
    TOO_MANY_ROOMS: Final = "too_many_rooms"
    RATE_LIMITED: Final = "rate_limited"
    UNSUPPORTED_DATA: Final = "unsupported_data"
    INTERNAL_ERROR: Final = "internal_error"


# --- client messages -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """``{"type": "join", "room": R}``."""

    room: str
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """``{"type": "leave", "room": R}``."""

    room: str
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """``{"type": "broadcast", "room": R, "payload": P}``."""

    room: str
    payload: Any
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"type": "ping"}``: the server answers ``pong``."""

    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """``{"type": "pong"}``: a heartbeat answer; no reply."""

    ref: Ref | None = None


ClientMessage = Join | Leave | Broadcast | Ping | Pong


def _room_has_no_control_chars(value: str) -> None:
    if _CONTROL_CHARS.search(value):
        raise ValidationError("Must not contain control characters.")


def is_room(value: object) -> TypeGuard[str]:
    """True if ``value`` is a room name that :func:`room_field` accepts."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ROOM_LENGTH
        and _CONTROL_CHARS.search(value) is None
    )


def room_field(*, required: bool = True, **kwargs: Any) -> fields.String:
    """The ``room`` field of every schema that names a room (the admin API's too)."""
    return fields.String(
        required=required,
        validate=[validate.Length(min=1, max=MAX_ROOM_LENGTH), _room_has_no_control_chars],
        **kwargs,
    )


def _not_too_deep(value: Any) -> None:
    """Refuse payloads nested deeper than MAX_PAYLOAD_DEPTH arrays/objects."""
    if not _shallow_enough(value):
        raise ValidationError(f"Nested deeper than {MAX_PAYLOAD_DEPTH} levels.")


def _shallow_enough(value: Any) -> bool:
    """True if ``value`` nests at most MAX_PAYLOAD_DEPTH arrays/objects deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_PAYLOAD_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


class _MessageSchema(Schema):
    """Base: unknown fields are ignored for forward compatibility."""

    message_class: ClassVar[type[Any]]

    class Meta:
        unknown = EXCLUDE


class JoinSchema(_MessageSchema):
    """Schema of a ``join`` message."""

    message_class = Join
    room = room_field()


class LeaveSchema(_MessageSchema):
    """Schema of a ``leave`` message."""

    message_class = Leave
    room = room_field()


class BroadcastSchema(_MessageSchema):
    """Schema of a ``broadcast`` message; ``payload`` is required, ``null`` allowed."""

    message_class = Broadcast
    room = room_field()
    payload = fields.Raw(required=True, allow_none=True, validate=_not_too_deep)


class PingSchema(_MessageSchema):
    """Schema of a ``ping`` message."""

    message_class = Ping


class PongSchema(_MessageSchema):
    """Schema of a ``pong`` message."""

    message_class = Pong


_SCHEMAS: Final[dict[str, _MessageSchema]] = {
    "join": JoinSchema(),
    "leave": LeaveSchema(),
    "broadcast": BroadcastSchema(),
    "ping": PingSchema(),
    "pong": PongSchema(),
}


def _describe(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{name}: {_describe(detail)}" for name, detail in errors.items())
    if isinstance(errors, list):
        return " ".join(str(item) for item in errors)
    return str(errors)


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _valid_ref(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and len(value) <= MAX_REF_LENGTH


def peek_ref(text: str | bytes) -> Ref | None:
    """The message's valid ``ref``, or None; never raises (for replies without parsing)."""
    try:
        data = jsoncodec.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if ref is not None and _valid_ref(ref) else None


def _quick_message(kind: str, data: dict[str, Any], ref: Ref | None) -> ClientMessage | None:
    """The message, if ``data`` is plainly valid; None leaves it to the schema.

    It accepts exactly what the schemas accept (the tests check both on generated
    messages), at a fraction of marshmallow's cost; marshmallow then only runs for
    messages it refuses, to word the error.
    """
    room = data.get("room")
    if kind == "broadcast":
        if is_room(room) and "payload" in data and _shallow_enough(data["payload"]):
            return Broadcast(room=room, payload=data["payload"], ref=ref)
    elif kind == "join":
        if is_room(room):
            return Join(room=room, ref=ref)
    elif kind == "leave":
        if is_room(room):
            return Leave(room=room, ref=ref)
    elif kind == "ping":
        return Ping(ref=ref)
    elif kind == "pong":
        return Pong(ref=ref)
    return None


def parse(text: str | bytes) -> ClientMessage:
    """Parse one client text frame.

    Raises :class:`ProtocolError` with code ``invalid_json``, ``invalid_message``
    or ``unknown_type``; its ``ref`` is the message's ``ref`` when that is valid.
    """
    try:
        data = jsoncodec.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON, "Invalid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "Message must be a JSON object")
    ref = data.get("ref")
    if ref is not None and not _valid_ref(ref):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            f"ref must be an integer or a string of at most {MAX_REF_LENGTH} characters",
        )
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "type: Missing or not a string.", ref)
    schema = _SCHEMAS.get(kind)
    if schema is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown type: {_clip(kind)}", ref)
    quick = _quick_message(kind, data, ref)
    if quick is not None:
        return quick
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _describe(exc.messages), ref) from None
    except RecursionError:
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "Message is nested too deeply", ref
        ) from None
    message: ClientMessage = schema.message_class(**loaded, ref=ref)
    return message


# --- server messages -------------------------------------------------------------


def _with_ref(message: dict[str, Any], ref: Ref | None) -> bytes:
    if ref is not None:
        message["ref"] = ref
    return jsoncodec.dumps(message)


def encode_connected(conn_id: str) -> bytes:
    """``{"type": "connected", "id": ID}``, the first message of every connection."""
    return jsoncodec.dumps({"type": "connected", "id": conn_id})


def encode_joined(room: str, ref: Ref | None = None) -> bytes:
    """``{"type": "joined", "room": R}``."""
    return _with_ref({"type": "joined", "room": room}, ref)


def encode_left(room: str, ref: Ref | None = None) -> bytes:
    """``{"type": "left", "room": R}``."""
    return _with_ref({"type": "left", "room": room}, ref)


def encode_message(room: str, sender: str, payload: Any) -> bytes:
    """``{"type": "message", "room": R, "from": ID, "payload": P}``, relayed to members."""
    return jsoncodec.dumps({"type": "message", "room": room, "from": sender, "payload": payload})


def encode_ack(ref: Ref, delivered: int) -> bytes:
    """``{"type": "ack", "ref": REF, "delivered": N}`` for a broadcast with ``ref``."""
    return jsoncodec.dumps({"type": "ack", "ref": ref, "delivered": delivered})


def encode_pong(ref: Ref | None = None) -> bytes:
    """``{"type": "pong"}``, the answer to a client ``ping``."""
    return _with_ref({"type": "pong"}, ref)


def encode_error(code: str, message: str, ref: Ref | None = None) -> bytes:
    """``{"type": "error", "code": CODE, "message": TEXT}``."""
    return _with_ref({"type": "error", "code": code, "message": message}, ref)


PING: Final = jsoncodec.dumps({"type": "ping"})
"""The heartbeat ping, ``{"type": "ping"}``."""
