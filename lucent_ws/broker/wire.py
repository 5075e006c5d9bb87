"""What nodes say to each other on the bus, and how membership is stored. Pure, no I/O.

A bus message is a compact JSON header, a newline, then an opaque body: the
already-encoded payload travels as is, so it is encoded once, on the
publishing node. Header fields: ``n`` the publishing node, ``t`` the kind, then
per kind:

====== ===================== ====================================================
kind   fields                body
====== ===================== ====================================================
room   ``r`` room, ``x``,    the encoded payload, for the room's members but ``x``;
       ``f``, ``o``, ``e``   from ``f`` (a client; absent: the server), at offset
                             ``o`` of epoch ``e`` (history rooms only)
all    ``x`` excluded ids    the encoded payload, for every connection but ``x``
to     ``id``                the encoded payload, for one connection
kick   ``id``, ``c``, ``m``  empty; close ``id`` with code ``c``, reason ``m``
conn   ``s`` sequence        ``[[op, id, arg], ...]``: membership changes
hello  ``s`` sequence        empty; the node (re)registered: read its snapshot
bye    —                     empty; the node left
====== ===================== ====================================================

A node's stored membership is a hash of one field per connection (its id ->
its metadata as JSON) and one per membership (``id`` newline ``room`` ->
empty), so a join or a leave writes one small field whatever else the
connection is in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .. import jsoncodec
from ..envelope import RoomMessage
from ..replica import CONNECT, GONE, JOIN, LEAVE, META, Change, Record

__all__ = [
    "ALL",
    "BYE",
    "CONN",
    "HELLO",
    "KICK",
    "ROOM",
    "TO",
    "decode",
    "decode_changes",
    "decode_room",
    "decode_snapshot",
    "encode",
    "encode_changes",
    "encode_meta",
    "encode_room",
    "room_field",
    "room_frame_parts",
    "with_position",
]

ROOM: Final = "room"
ALL: Final = "all"
TO: Final = "to"
KICK: Final = "kick"
CONN: Final = "conn"
HELLO: Final = "hello"
BYE: Final = "bye"

_SEPARATOR: Final = b"\n"
_FIELD_SEPARATOR: Final = "\n"
_OPS: Final = frozenset({CONNECT, META, JOIN, LEAVE, GONE})


def encode(node: str, kind: str, body: bytes = b"", **fields: Any) -> bytes:
    """One bus message: header (which never contains a raw newline), newline, body."""
    header = {"n": node, "t": kind, **fields}
    return jsoncodec.dumps(header) + _SEPARATOR + body


def decode(message: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a bus message into its header and body; ValueError if malformed."""
    head, sep, body = message.partition(_SEPARATOR)
    if not sep:
        raise ValueError("bus message without a header")
    header = jsoncodec.loads(head)
    if not isinstance(header, dict) or not isinstance(header.get("n"), str):
        raise ValueError("bus message header is not an object with a node id")
    return header, body


def encode_room(node: str, message: RoomMessage, exclude: Iterable[str]) -> bytes:
    """The bus message of a room broadcast."""
    fields: dict[str, Any] = {"r": message.room, "x": list(exclude)}
    if message.sender is not None:
        fields["f"] = message.sender
    if message.offset is not None:
        fields["o"] = message.offset
        fields["e"] = message.epoch
    return encode(node, ROOM, message.payload, **fields)


def room_frame_parts(
    node: str, message: RoomMessage, exclude: Iterable[str]
) -> tuple[bytes, bytes]:
    """A history room's bus message without its position: what goes before and after it.

    The backend joins them with :func:`with_position` once it assigned the offset.
    """
    fields: dict[str, Any] = {"n": node, "t": ROOM, "r": message.room, "x": list(exclude)}
    if message.sender is not None:
        fields["f"] = message.sender
    header = jsoncodec.dumps(fields)
    return header[:-1], b"}" + _SEPARATOR + message.payload


def with_position(prefix: bytes, suffix: bytes, offset: int, epoch: str) -> bytes:
    """The bus message of :func:`room_frame_parts` at ``offset`` of ``epoch`` (a hex string)."""
    return prefix + b',"o":' + str(offset).encode() + b',"e":"' + epoch.encode() + b'"' + suffix


def decode_room(header: Mapping[str, Any], body: bytes) -> RoomMessage:
    """The room message a ``room`` bus message carries; ValueError if malformed."""
    room, sender, offset, epoch = header["r"], header.get("f"), header.get("o"), header.get("e")
    if not isinstance(room, str) or not (sender is None or isinstance(sender, str)):
        raise ValueError("room message with a malformed room or sender")
    if offset is not None and (type(offset) is not int or not isinstance(epoch, str)):
        raise ValueError("room message with a malformed history position")
    return RoomMessage(room, body, sender, offset, epoch)


def encode_meta(meta: Mapping[str, Any]) -> bytes:
    """A connection's metadata as stored; metadata that is not JSON is left out."""
    try:
        return jsoncodec.dumps(meta)
    except TypeError:
        return b"{}"


def room_field(conn_id: str, room: str) -> str:
    """The hash field recording that ``conn_id`` is in ``room``."""
    return conn_id + _FIELD_SEPARATOR + room


def encode_changes(changes: Iterable[Change]) -> bytes:
    """The body of a ``conn`` message; metadata arguments come encoded (:func:`encode_meta`)."""
    items = [
        b"["
        + jsoncodec.dumps(op)
        + b","
        + jsoncodec.dumps(conn_id)
        + b","
        + (arg if isinstance(arg, bytes) else jsoncodec.dumps(arg))
        + b"]"
        for op, conn_id, arg in changes
    ]
    return b"[" + b",".join(items) + b"]"


def decode_changes(body: bytes) -> list[Change]:
    """The body of a ``conn`` message; ValueError if malformed."""
    value = jsoncodec.loads(body)
    if not isinstance(value, list):
        raise ValueError("conn message body is not a list")
    changes: list[Change] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 3 and item[0] in _OPS):
            raise ValueError("malformed membership change")
        op, conn_id, arg = item
        if not isinstance(conn_id, str):
            raise ValueError("membership change without a connection id")
        if op in (JOIN, LEAVE) and not isinstance(arg, str):
            raise ValueError("membership change without a room")
        changes.append((op, conn_id, arg))
    return changes


def decode_snapshot(fields: Mapping[str, bytes]) -> tuple[dict[str, Record], int]:
    """A node's stored hash as records, and how many fields were malformed."""
    meta: dict[str, Any] = {}
    rooms: dict[str, list[str]] = {}
    malformed = 0
    for name, value in fields.items():
        conn_id, sep, room = name.partition(_FIELD_SEPARATOR)
        if sep:
            rooms.setdefault(conn_id, []).append(room)
            continue
        try:
            decoded = jsoncodec.loads(value)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            meta[conn_id] = decoded
        else:
            malformed += 1  # one bad record must not stall the whole resync
    # A membership whose connection field is missing was written by a batch still
    # landing; the next change or snapshot completes it.
    records = {
        conn_id: Record(tuple(rooms.get(conn_id, ())), value) for conn_id, value in meta.items()
    }
    return records, malformed
