"""Server frames to the rooms they concern: messages, positions (``joined``, ``resync``),
presence. Applied in arrival order, so a diff right behind a snapshot stays applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from .events import ClientEvent
from .rooms import Room, Stream
from .state import Recovery, message_from_frame

__all__ = ["parse_text", "route"]


def parse_text(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    """The JSON object of a text frame, or None."""
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def route(
    frame: dict[str, Any],
    rooms: Mapping[str, Room],
    direct: Stream,
    emit: Callable[[ClientEvent], None],
) -> None:
    """Apply one frame to its room (or to ``direct``); ``emit`` gets recovery events."""
    kind = frame.get("type")
    if kind == "message":
        message = message_from_frame(frame)
        if message.room is None:
            direct._put(message)
            return
        target = rooms.get(message.room)
        if target is not None and target.position.accept(message.epoch, message.offset):
            target._put(message)
        return
    if kind not in ("joined", "resync", "presence", "presence_diff"):
        return
    room = rooms.get(str(frame.get("room")))
    if room is None:
        return
    if kind == "presence":
        room.presence.reset(frame)
    elif kind == "presence_diff":
        room.presence.apply(frame)
    else:
        _on_position(room, frame, emit)


def _on_position(room: Room, frame: dict[str, Any], emit: Callable[[ClientEvent], None]) -> None:
    """A ``joined`` reply, or a ``resync`` (the server cannot continue from our position:
    like a ``joined`` with ``recovered: false``, the room takes the new position)."""
    recovery: Recovery | None
    if frame.get("type") == "resync":
        recovery = room.position.on_resync(frame)
    else:
        recovery = room.position.on_joined(frame, room.asked_since)
        room.joined = room.ever_joined = True
    if recovery is not None:
        emit(
            ClientEvent(
                "recovered",
                room=room.name,
                recovered=recovery.recovered,
                missed=recovery.missed,
                reason=recovery.reason,
            )
        )
