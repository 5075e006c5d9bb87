"""What the server sends: the UTF-8 JSON of each server message (pure).

Each ``encode_*`` function returns the bytes of one message; replies echo the
client's ``ref`` when it had one. :mod:`lucent_ws.protocol` parses what clients
send.
"""

from __future__ import annotations

from typing import Any, Final

from . import jsoncodec
from .protocol import Ref

__all__ = [
    "PING",
    "encode_ack",
    "encode_ack_at",
    "encode_connected",
    "encode_error",
    "encode_history",
    "encode_joined",
    "encode_joined_at",
    "encode_left",
    "encode_message",
    "encode_pong",
    "encode_reconnect",
    "encode_reply",
    "encode_resync",
]


def _with_ref(message: dict[str, Any], ref: Ref | None) -> bytes:
    if ref is not None:
        message["ref"] = ref
    return jsoncodec.dumps(message)


def encode_connected(
    conn_id: str, version: int = 1, heartbeat: tuple[float, float] | None = None
) -> bytes:
    """``{"type": "connected", "id": ID}``, the first message of every connection.

    v2 adds ``"v": 2`` and ``"heartbeat": {"interval": S, "timeout": S}`` (null when off).
    """
    if version < 2:
        return jsoncodec.dumps({"type": "connected", "id": conn_id})
    timing = None if heartbeat is None else {"interval": heartbeat[0], "timeout": heartbeat[1]}
    return jsoncodec.dumps({"type": "connected", "id": conn_id, "v": version, "heartbeat": timing})


def encode_reply(ref: Ref | None, data: Any) -> bytes:
    """``{"type": "reply", "ref": REF, "data": D}``: an application handler's answer."""
    return jsoncodec.dumps({"type": "reply", "ref": ref, "data": data})


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


# --- history (section 10) --------------------------------------------------------


def encode_joined_at(
    room: str,
    epoch: str,
    offset: int,
    ref: Ref | None = None,
    *,
    recovered: bool | None = None,
    missed: int = 0,
    reason: str | None = None,
) -> bytes:
    """``joined`` in a history room: ``epoch``, ``offset`` and, after a ``since``,
    ``recovered``, ``missed`` and (when not recovered) ``reason``."""
    message: dict[str, Any] = {"type": "joined", "room": room, "epoch": epoch, "offset": offset}
    if recovered is not None:
        message["recovered"] = recovered
        message["missed"] = missed
        if reason is not None:
            message["reason"] = reason
    return _with_ref(message, ref)


def encode_ack_at(
    ref: Ref, delivered: int, offset: int, epoch: str, *, duplicate: bool = False
) -> bytes:
    """``ack`` of a broadcast in a history room: its ``offset`` and ``epoch``;
    ``duplicate: true`` when its id was already published (nothing was sent)."""
    message: dict[str, Any] = {
        "type": "ack",
        "ref": ref,
        "delivered": delivered,
        "offset": offset,
        "epoch": epoch,
    }
    if duplicate:
        message["duplicate"] = True
    return jsoncodec.dumps(message)


def encode_history(
    room: str, epoch: str, offset: int, messages: bytes, ref: Ref | None = None
) -> bytes:
    """``{"type":"history","room":R,"epoch":E,"offset":TOP,"messages":[...]}``;
    ``messages`` is the already-encoded JSON array of envelopes."""
    head = jsoncodec.dumps({"type": "history", "room": room, "epoch": epoch, "offset": offset})
    tail = b"}" if ref is None else b',"ref":' + jsoncodec.dumps(ref) + b"}"
    return head[:-1] + b',"messages":' + messages + tail


def encode_reconnect(within: float) -> bytes:
    """``{"type":"reconnect","within":S}``: the drain hint sent to v2 connections before 1001."""
    return jsoncodec.dumps({"type": "reconnect", "within": within})


def encode_resync(room: str, reason: str, epoch: str, offset: int) -> bytes:
    """``{"type":"resync","room":R,"recovered":false,"reason":..,"epoch":E,"offset":TOP}``:
    the client's state of the room must be refetched; messages continue after ``TOP``."""
    return jsoncodec.dumps(
        {
            "type": "resync",
            "room": room,
            "recovered": False,
            "reason": reason,
            "epoch": epoch,
            "offset": offset,
        }
    )


def encode_pong(ref: Ref | None = None) -> bytes:
    """``{"type": "pong"}``, the answer to a client ``ping``."""
    return _with_ref({"type": "pong"}, ref)


def encode_error(code: str, message: str, ref: Ref | None = None) -> bytes:
    """``{"type": "error", "code": CODE, "message": TEXT}``."""
    return _with_ref({"type": "error", "code": code, "message": message}, ref)


PING: Final = jsoncodec.dumps({"type": "ping"})
"""The heartbeat ping, ``{"type": "ping"}``."""
