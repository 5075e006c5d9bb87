"""What the client keeps per room, pure: its position in the stream and its presence.

The position is the last ``(epoch, offset)`` seen, from ``joined`` or from a
message; a message at or below it in the same epoch was already delivered and
is dropped (replays overlap live messages around a reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeGuard

__all__ = ["Ack", "Message", "Position", "PresenceState", "Recovery", "message_from_frame"]


@dataclass(frozen=True, slots=True)
class Message:
    """A message delivered to a room (``room`` is None for a direct message)."""

    room: str | None
    payload: Any
    sender: str | None = None
    offset: int | None = None
    epoch: str | None = None
    replay: bool = False


def message_from_frame(frame: dict[str, Any]) -> Message:
    """The :class:`Message` of a ``message`` frame; fields of the wrong type become None."""
    room, sender = frame.get("room"), frame.get("from")
    epoch, offset = frame.get("epoch"), frame.get("offset")
    return Message(
        room=room if isinstance(room, str) else None,
        payload=frame.get("payload"),
        sender=sender if isinstance(sender, str) else None,
        offset=offset if _is_offset(offset) else None,
        epoch=epoch if isinstance(epoch, str) else None,
        replay=frame.get("replay") is True,
    )


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's answer to a publish."""

    id: str
    delivered: int
    offset: int | None = None
    epoch: str | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Recovery:
    """The outcome of a re-join with ``since``: the missed messages follow when recovered."""

    room: str
    recovered: bool
    missed: int = 0
    reason: str | None = None


@dataclass(slots=True)
class Position:
    """The last position seen in one room's stream."""

    epoch: str | None = None
    offset: int | None = None

    def since(self) -> dict[str, Any] | None:
        """The ``since`` to re-join with, or None before any position is known."""
        if self.epoch is None or self.offset is None:
            return None
        return {"offset": self.offset, "epoch": self.epoch}

    def on_joined(self, frame: dict[str, Any], asked: bool) -> Recovery | None:
        """Apply a ``joined`` reply; a Recovery when the join asked ``since``.

        Recovered: keep the position, the replay continues from it. Otherwise
        (or on a first join) the position becomes the room's top.
        """
        epoch, top = frame.get("epoch"), frame.get("offset")
        recovered = frame.get("recovered") is True
        if not (asked and recovered) and isinstance(epoch, str) and _is_offset(top):
            self.epoch, self.offset = epoch, top
        if not asked:
            return None
        missed = frame.get("missed")
        reason = frame.get("reason")
        return Recovery(
            room=str(frame.get("room")),
            recovered=recovered,
            missed=missed if _is_offset(missed) else 0,
            reason=reason if isinstance(reason, str) else None,
        )

    def on_resync(self, frame: dict[str, Any]) -> Recovery:
        """Apply a ``resync``: the server cannot continue this room's stream from here
        (its epoch changed, or a gap); the position becomes the given top."""
        epoch, top = frame.get("epoch"), frame.get("offset")
        if isinstance(epoch, str) and _is_offset(top):
            self.epoch, self.offset = epoch, top
        reason = frame.get("reason")
        return Recovery(
            room=str(frame.get("room")),
            recovered=False,
            reason=reason if isinstance(reason, str) else "resync",
        )

    def accept(self, epoch: object, offset: object) -> bool:
        """Record a message's position; False for one already delivered (drop it)."""
        if not isinstance(epoch, str) or not _is_offset(offset):
            return True  # a room without history: nothing to deduplicate
        if epoch == self.epoch and self.offset is not None and offset <= self.offset:
            return False
        self.epoch, self.offset = epoch, offset
        return True


@dataclass(slots=True)
class PresenceState:
    """A room's presence: ``members`` maps a key (user id or connection id) to entries."""

    count: int = 0
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def reset(self, frame: dict[str, Any]) -> None:
        """Replace with a full ``presence`` answer."""
        members = frame.get("members")
        self.members = (
            {str(k): [e for e in v if isinstance(e, dict)] for k, v in members.items()}
            if isinstance(members, dict)
            else {}
        )
        self.count = _count(frame, self.members)

    def apply(self, frame: dict[str, Any]) -> None:
        """Apply a ``presence_diff``: leaves (by entry id), then joins."""
        for key, entries in _groups(frame.get("leaves")):
            gone = {e.get("id") for e in entries}
            kept = [e for e in self.members.get(key, []) if e.get("id") not in gone]
            if kept:
                self.members[key] = kept
            else:
                self.members.pop(key, None)
        for key, entries in _groups(frame.get("joins")):
            current = self.members.setdefault(key, [])
            known = {e.get("id") for e in current}
            current.extend(e for e in entries if e.get("id") not in known)
        self.count = _count(frame, self.members)


def _groups(value: object) -> list[tuple[str, list[dict[str, Any]]]]:
    if not isinstance(value, dict):
        return []
    return [
        (str(k), [e for e in v if isinstance(e, dict)])
        for k, v in value.items()
        if isinstance(v, list)
    ]


def _count(frame: dict[str, Any], members: dict[str, list[dict[str, Any]]]) -> int:
    count = frame.get("count")
    return count if _is_offset(count) else sum(len(v) for v in members.values())


def _is_offset(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
