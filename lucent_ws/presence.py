"""Presence: who is in a room, keyed by user, and the batched diffs members receive (pure).

A member's key is its ``userId`` metadata (as a string) or, without one, its
connection id, so one user with several tabs is one key with several entries.
Each entry shows only the metadata keys the room's policy lists in
``presence_info``: never the whole metadata, which may hold JWT claims.

:class:`PresenceDiffer` remembers, per room, the presence it last announced and,
when asked, compares it with the presence now: the diff is computed from states,
not from events, so a burst of joins becomes one diff, and a membership rebuilt
from a snapshot (after a broker blip) announces nothing when nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

__all__ = ["Entry", "PresenceDiff", "PresenceDiffer", "PresenceState", "entry", "group", "key_of"]

USER_KEY = "userId"

Entry = tuple[str, str, tuple[tuple[str, Any], ...]]
"""One member: its presence key, its connection id, the visible metadata (sorted pairs)."""

PresenceState = dict[str, Entry]
"""A room's presence: connection id -> entry."""


class PresenceDiff(TypedDict):
    """What changed in a room's presence since the last diff."""

    count: int
    joins: dict[str, list[dict[str, Any]]]
    leaves: dict[str, list[dict[str, Any]]]


def key_of(conn_id: str, meta: Mapping[str, Any]) -> str:
    """The presence key: ``meta["userId"]`` as a string, else the connection id."""
    user = meta.get(USER_KEY)
    if user is None or isinstance(user, (dict, list)):
        return conn_id
    return str(user)


def entry(conn_id: str, meta: Mapping[str, Any], info_keys: Iterable[str]) -> Entry:
    """A member's presence entry, showing only ``info_keys`` of its metadata."""
    info = tuple(sorted((k, meta[k]) for k in info_keys if k in meta))
    return key_of(conn_id, meta), conn_id, info


def group(entries: Iterable[Entry]) -> dict[str, list[dict[str, Any]]]:
    """Entries as the wire shows them: key -> ``[{"id": ID, "info": {...}}, ...]``."""
    members: dict[str, list[dict[str, Any]]] = {}
    for key, conn_id, info in sorted(entries, key=lambda e: (e[0], e[1])):
        members.setdefault(key, []).append({"id": conn_id, "info": dict(info)})
    return members


class PresenceDiffer:
    """The presence last announced per room, and the diffs against it."""

    __slots__ = ("_announced",)

    def __init__(self) -> None:
        self._announced: dict[str, PresenceState] = {}

    def diff(self, room: str, now: PresenceState) -> PresenceDiff | None:
        """The diff from the last announced presence to ``now`` (None if equal); ``now`` is kept."""
        before = self._announced.get(room, {})
        if now:
            self._announced[room] = now
        else:
            self._announced.pop(room, None)
        joins = [e for conn_id, e in now.items() if before.get(conn_id) != e]
        leaves = [e for conn_id, e in before.items() if now.get(conn_id) != e]
        if not joins and not leaves:
            return None
        return {"count": len(now), "joins": group(joins), "leaves": group(leaves)}

    def announced(self, room: str) -> PresenceState:
        """The presence last announced for ``room`` (empty if none)."""
        return self._announced.get(room, {})

    def forget(self, room: str) -> None:
        """Drop what was announced for ``room`` (it has no more local subscribers)."""
        self._announced.pop(room, None)

    def rooms(self) -> list[str]:
        """Rooms with an announced presence."""
        return list(self._announced)
