"""Presence, live: who is in each presence room, cluster-wide, and the batched diffs (pure).

:class:`PresenceTracker` computes a room's presence from this node's members
(the hub's rooms and each connection's metadata) and the other nodes' members
(the replicated :class:`~lucent_ws.replica.ClusterView`). In rooms whose policy
has ``join_leave`` it sends ``presence_diff`` to the room's local v2 members:
a change only marks the room dirty, and a timer sends at most one diff per room
per :attr:`PresenceTracker.interval` (50 ms), so a burst of joins costs one
frame per member per interval, never one per join. The diff is computed from
states (:class:`~lucent_ws.presence.PresenceDiffer`), so a membership rebuilt
from a snapshot after a broker blip announces nothing when nothing changed.

A ``presence`` request in such a room is answered with the presence last
announced (after sending a pending diff if the room's interval allows it): the
reply plus the diffs that follow it are then exactly the room's presence.

A node that dies without a word leaves the view when its lease runs out; the
tracker keeps a timer on the first lease to run out, so its members leave
within the lease even when nothing else reads the view. Rooms without a
presence policy cost nothing: the manager calls in only for presence rooms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypedDict

from . import jsoncodec
from .connection import Connection
from .frames import text_frame
from .hub import Hub
from .policy import RoomPolicy
from .presence import PresenceDiff, PresenceDiffer, PresenceState, entry, group
from .protocol import Ref
from .replica import ClusterView

__all__ = ["PresenceSnapshot", "PresenceTracker", "encode_presence", "encode_presence_diff"]

logger = logging.getLogger("lucent_ws.presence")

Fanout = Callable[[Collection[Connection], bytes], object]
"""Queue one frame for several connections (the outbox's fan-out)."""


class PresenceSnapshot(TypedDict):
    """A room's presence: ``count`` connections, grouped by presence key."""

    count: int
    members: dict[str, list[dict[str, Any]]]


def encode_presence(room: str, presence: PresenceSnapshot, ref: Ref | None = None) -> bytes:
    """``{"type": "presence", "room": R, "count": N, "members": {...}}``."""
    message: dict[str, Any] = {"type": "presence", "room": room, **presence}
    if ref is not None:
        message["ref"] = ref
    return jsoncodec.dumps(message)


def encode_presence_diff(room: str, diff: PresenceDiff) -> bytes:
    """``{"type": "presence_diff", "room": R, "count": N, "joins": {...}, "leaves": {...}}``."""
    return jsoncodec.dumps({"type": "presence_diff", "room": room, **diff})


def snapshot(state: PresenceState) -> PresenceSnapshot:
    """A presence state in its wire form."""
    return {"count": len(state), "members": group(state.values())}


class PresenceTracker:
    """Presence of every room, and batched ``presence_diff`` to local v2 members.

    ``policy_of`` gives a room's policy; ``fanout`` queues a frame for
    connections. The manager calls :meth:`touch` when a local member of a
    ``join_leave`` room joins, leaves, closes or changes its metadata; the
    cluster view calls :meth:`rooms_changed` for remote changes.
    """

    interval = 0.05
    """Seconds between two diffs of one room, at least."""
    crowd = 250
    """Above this many v2 members, a room's interval grows in proportion (at most 1 s):
    every diff costs one delivery per member, so a big room's presence traffic stays
    bounded (1,000 members: one diff per 0.2 s)."""

    def __init__(self, hub: Hub, policy_of: Callable[[str], RoomPolicy], fanout: Fanout) -> None:
        self._hub = hub
        self._policy_of = policy_of
        self._fanout = fanout
        self._view = ClusterView()
        self._differ = PresenceDiffer()
        self._dirty: set[str] = set()
        self._sent_at: dict[str, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.diffs_sent = 0
        """``presence_diff`` frames built so far (one per room per flush)."""

    # --- inputs ----------------------------------------------------------------------

    def attach(self, view: ClusterView) -> None:
        """Read remote members from ``view`` and listen to its room changes."""
        if self._view.on_rooms_changed == self.rooms_changed:
            self._view.on_rooms_changed = None
        self._view = view
        view.on_rooms_changed = self.rooms_changed
        self.rooms_changed(self._differ.rooms())

    def touch(self, room: str) -> None:
        """The presence of ``room`` may have changed: send a diff soon."""
        self._dirty.add(room)
        if self._timer is not None:
            return
        loop = _running_loop()
        if loop is None:  # outside the loop (scripts, unit tests): no batching
            self._flush_due()
            return
        self._timer = loop.call_later(self.interval, self._flush_due)

    def rooms_changed(self, rooms: Iterable[str]) -> None:
        """Remote membership of ``rooms`` changed (the cluster view's listener)."""
        for room in rooms:
            if room in self._hub.v2_rooms and self._policy_of(room).join_leave:
                self.touch(room)
            elif room in self._dirty or self._differ.announced(room):
                self.touch(room)  # no local v2 member left: let the flush forget it
        self._arm_expiry()

    # --- reads -----------------------------------------------------------------------

    def state(self, room: str, policy: RoomPolicy | None = None) -> PresenceState:
        """The room's presence now: connection id -> entry, local and remote members."""
        info = (policy or self._policy_of(room)).presence_info
        now: PresenceState = {}
        members = self._hub.rooms.get(room)
        if members:
            for conn_id, conn in members.items():
                now[conn_id] = entry(conn_id, conn.meta, info)
        for conn_id, meta in self._view.room_records(room):
            if conn_id not in now:
                now[conn_id] = entry(conn_id, meta, info)
        return now

    def presence(self, room: str) -> PresenceSnapshot:
        """The room's presence now, in its wire form."""
        return snapshot(self.state(room))

    def for_member(self, room: str) -> PresenceSnapshot:
        """What a member asking ``presence`` gets: with ``join_leave``, the presence
        the diffs that follow start from; otherwise the presence now."""
        policy = self._policy_of(room)
        if not policy.join_leave:
            return snapshot(self.state(room, policy))
        if room in self._dirty and self._since_sent(room) >= self._interval(room):
            self._flush(room)
        return snapshot(self._differ.announced(room))

    # --- sending ---------------------------------------------------------------------

    def _interval(self, room: str) -> float:
        members = len(self._hub.v2_rooms.get(room, ()))
        return min(1.0, self.interval * max(1.0, members / self.crowd))

    def _since_sent(self, room: str) -> float:
        sent = self._sent_at.get(room)
        loop = _running_loop()
        if sent is None or loop is None:
            return float("inf")
        return loop.time() - sent

    def _flush_due(self) -> None:
        self._timer = None
        wait: float | None = None
        for room in list(self._dirty):
            left = self._interval(room) - self._since_sent(room)
            if left > 0.001:  # below that, float rounding could re-arm the timer forever
                wait = left if wait is None else min(wait, left)
            else:
                self._flush(room)
        if wait is not None:
            loop = _running_loop()
            if loop is not None:
                self._timer = loop.call_later(wait, self._flush_due)
        self._arm_expiry()

    def _flush(self, room: str) -> None:
        self._dirty.discard(room)
        recipients = self._hub.v2_rooms.get(room)
        policy = self._policy_of(room)
        if not recipients or not policy.join_leave:
            self._differ.forget(room)
            self._sent_at.pop(room, None)
            return
        diff = self._differ.diff(room, self.state(room, policy))
        if diff is None:
            return
        loop = _running_loop()
        if loop is not None:
            self._sent_at[room] = loop.time()
        self.diffs_sent += 1
        self._fanout(list(recipients.values()), text_frame(encode_presence_diff(room, diff)))

    # --- leases ----------------------------------------------------------------------

    def _arm_expiry(self) -> None:
        """Wake up when the first node's lease runs out, while a room is announced."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if not self._differ.rooms():
            return
        delay = self._view.expires_in()
        loop = _running_loop()
        if delay is None or loop is None:
            return
        self._expiry = loop.call_later(delay + 0.005, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self._view.nodes()  # drops the nodes whose lease ran out; they call rooms_changed
        self._arm_expiry()

    def close(self) -> None:
        """Cancel the timers (the manager is going away)."""
        for handle in (self._timer, self._expiry):
            if handle is not None:
                handle.cancel()
        self._timer = self._expiry = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
