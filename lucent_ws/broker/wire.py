"""What nodes say to each other on the bus, and how connection records are stored.

A bus message is a compact JSON header, a newline, then an opaque body: the
already-encoded payload travels as is, so it is encoded once, on the
publishing node. Pure functions, no I/O.

Header fields: ``n`` the publishing node, ``t`` the kind, then per kind:

====== ===================== ====================================================
kind   fields                body
====== ===================== ====================================================
room   ``r`` room, ``x``     the encoded payload, for the room's members but ``x``
all    ``x`` excluded ids    the encoded payload, for every connection but ``x``
to     ``id``                the encoded payload, for one connection
kick   ``id``, ``c``, ``m``  empty; close ``id`` with code ``c``, reason ``m``
conn   ``s`` sequence        ``{id: record or null}``: changed connections
hello  ``s`` sequence        empty; the node (re)registered: read its snapshot
bye    —                     empty; the node left
====== ===================== ====================================================
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from .. import jsoncodec
from .view import Record

__all__ = [
    "ALL",
    "BYE",
    "CONN",
    "HELLO",
    "KICK",
    "ROOM",
    "TO",
    "decode",
    "decode_record",
    "decode_records",
    "encode",
    "encode_changes",
    "encode_record",
]

ROOM: Final = "room"
ALL: Final = "all"
TO: Final = "to"
KICK: Final = "kick"
CONN: Final = "conn"
HELLO: Final = "hello"
BYE: Final = "bye"

_SEPARATOR: Final = b"\n"


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


def encode_record(rooms: Collection[str], meta: Mapping[str, Any]) -> bytes:
    """A connection's stored record; metadata that is not JSON is left out."""
    try:
        return jsoncodec.dumps({"rooms": sorted(rooms), "meta": meta})
    except TypeError:
        return jsoncodec.dumps({"rooms": sorted(rooms), "meta": {}})


def decode_record(data: Any) -> Record:
    """Read a stored record (a JSON object, or its encoded bytes)."""
    value = jsoncodec.loads(data) if isinstance(data, bytes | str) else data
    if not isinstance(value, dict):
        raise ValueError("connection record is not an object")
    rooms = value.get("rooms", ())
    meta = value.get("meta", {})
    if not isinstance(rooms, list) or not isinstance(meta, dict):
        raise ValueError("connection record has mistyped fields")
    return Record(tuple(str(room) for room in rooms), meta)


def encode_changes(changes: Mapping[str, bytes | None]) -> bytes:
    """The body of a ``conn`` message from encoded records (None: the connection left)."""
    parts = [
        jsoncodec.dumps(conn_id) + b":" + (record or b"null") for conn_id, record in changes.items()
    ]
    return b"{" + b",".join(parts) + b"}"


def decode_records(body: bytes) -> dict[str, Record | None]:
    """The body of a ``conn`` message: changed records, None for connections that left."""
    value = jsoncodec.loads(body)
    if not isinstance(value, dict):
        raise ValueError("conn message body is not an object")
    return {
        str(conn_id): None if record is None else decode_record(record)
        for conn_id, record in value.items()
    }
