"""Application payloads as each protocol version frames them (pure).

A payload is encoded once, by whoever publishes it; each version then frames
it at most once per broadcast, by byte concatenation:

- v1 (section 3 of the protocol) sends a host payload verbatim and a client
  broadcast as ``{"type":"message","room":R,"from":ID,"payload":P}``;
- v2 wraps every payload in that envelope: ``from`` is ``null`` for the
  server, ``room`` is ``null`` for direct messages and ``broadcast_all``, and a
  room with history adds ``offset`` and ``epoch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from . import jsoncodec

__all__ = ["V1", "V2", "RoomMessage", "direct_v2", "envelope_head", "frame_body"]

V1: Final = 1
"""The protocol of section 3, the default."""
V2: Final = 2
"""The protocol of section 9, asked for with ``?v=2``."""


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """One message for a room's members: the encoded payload and where it comes from."""

    room: str
    payload: bytes
    """The payload's UTF-8 JSON, encoded once by the publisher."""
    sender: str | None = None
    """The client connection that broadcast it; None for the server."""
    offset: int | None = None
    """Its position in the room's history (rooms with history only)."""
    epoch: str | None = None
    """The history stream the offset belongs to."""

    def v1(self) -> bytes:
        """The v1 frame body: the payload itself, or the envelope of a client broadcast."""
        if self.sender is None:
            return self.payload
        return _envelope(self.room, self.sender, self.payload, b"}")

    def v2(self, *, replay: bool = False) -> bytes:
        """The v2 envelope, with the history position when there is one."""
        if self.offset is None:
            return _envelope(self.room, self.sender, self.payload, b"}")
        head = envelope_head(self.room, self.sender, self.payload)
        return frame_body(head, self.offset, jsoncodec.dumps(self.epoch), replay=replay)

    @property
    def same_for_all(self) -> bool:
        """True when v1 and v2 clients get the same bytes (one frame for the room)."""
        return self.sender is not None and self.offset is None


def direct_v2(payload: bytes) -> bytes:
    """The v2 envelope of a direct message or a ``broadcast_all`` (no room, no sender)."""
    return b'{"type":"message","room":null,"from":null,"payload":' + payload + b"}"


def envelope_head(room: str, sender: str | None, payload: bytes) -> bytes:
    """A room message's envelope up to its payload; the caller closes it with a tail."""
    return (
        b'{"type":"message","room":'
        + jsoncodec.dumps(room)
        + b',"from":'
        + (jsoncodec.dumps(sender) if sender is not None else b"null")
        + b',"payload":'
        + payload
    )


def frame_body(head: bytes, offset: int, epoch: bytes, *, replay: bool = False) -> bytes:
    """The v2 envelope of a head at ``offset``; ``epoch`` is the JSON-encoded epoch."""
    tail = b',"replay":true}' if replay else b"}"
    return head + b',"offset":' + str(offset).encode() + b',"epoch":' + epoch + tail


def _envelope(room: str, sender: str | None, payload: bytes, tail: bytes) -> bytes:
    return envelope_head(room, sender, payload) + tail
