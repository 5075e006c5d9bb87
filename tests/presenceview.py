"""A client's presence of one room, built strictly the way the protocol says a client must.

The last ``presence`` reply, then every ``presence_diff`` after it: ``leaves`` first,
then ``joins``. Applying is strict, so a protocol error is recorded instead of
smoothed over: a leave of an entry the view does not hold (a leave sent twice, or
for someone never announced), a join of an id the view already holds (a diff sent
twice), a ``count`` that disagrees with the entries. Diffs before the first reply
are ignored (the reply already includes them).
"""

from __future__ import annotations

from typing import Any

Info = dict[str, Any]


class PresenceView:
    """One client's view of ``room``; ``errors`` lists every protocol violation seen."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.members: dict[str, tuple[str, Info]] | None = None
        """Connection id -> (presence key, info); None before the first reply."""
        self.errors: list[str] = []
        self.frames = 0
        """``presence`` and ``presence_diff`` frames of this room received."""
        self.events: list[tuple[float, str, str]] = []
        """``(time, "join" | "leave", id)`` for every diff entry applied after a reply."""

    def apply(self, message: Any, at: float = 0.0) -> None:
        """Apply one server message (others are ignored); ``at`` stamps its events."""
        if not isinstance(message, dict) or message.get("room") != self.room:
            return
        kind = message.get("type")
        if kind == "presence":
            self.frames += 1
            self.members = {
                e["id"]: (key, e["info"]) for key, entries in message["members"].items()
                for e in entries
            }  # fmt: skip
            if message["count"] != len(self.members):
                self.errors.append(f"reply count {message['count']} != {len(self.members)}")
        elif kind == "presence_diff":
            self.frames += 1
            members = self.members
            if members is None:
                return
            for key, entries in message["leaves"].items():
                for e in entries:
                    if members.get(e["id"]) != (key, e["info"]):
                        self.errors.append(f"leave of {key}/{e['id']} not in the view")
                    members.pop(e["id"], None)
                    self.events.append((at, "leave", e["id"]))
            for key, entries in message["joins"].items():
                for e in entries:
                    if e["id"] in members:
                        self.errors.append(f"join of {key}/{e['id']} already in the view")
                    members[e["id"]] = (key, e["info"])
                    self.events.append((at, "join", e["id"]))
            if message["count"] != len(members):
                self.errors.append(f"diff count {message['count']} != {len(members)}")

    def reset(self) -> None:
        """Forget the view (the client left the room): diffs count again after the next reply."""
        self.members = None

    def ids(self) -> set[str]:
        """Connection ids in the view (empty before the first reply)."""
        return set(self.members or ())

    def wire(self) -> dict[str, Any] | None:
        """The view in the reply's wire form (``count`` and ``members``), None before a reply."""
        if self.members is None:
            return None
        grouped: dict[str, list[dict[str, Any]]] = {}
        for conn_id, (key, info) in sorted(self.members.items(), key=lambda m: (m[1][0], m[0])):
            grouped.setdefault(key, []).append({"id": conn_id, "info": info})
        return {"count": len(self.members), "members": grouped}
