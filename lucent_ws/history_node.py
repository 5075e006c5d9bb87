"""This node's side of shared history rooms: deliver in sequence, keep a copy, resync (pure).

With a broker, the cluster's :class:`~lucent_ws.cluster.SharedHistory` sequences
each history room's messages and hands them here
(:class:`~lucent_ws.cluster.HistoryTarget`): each is delivered to the room's
local members and kept in the node's :class:`~lucent_ws.history.HistoryStore`
under the offset the backend assigned (a mirror that serves recoveries without
a round trip). A ``resync`` goes to the room's local v2 members, and the mirror
restarts at the new position so it never serves a replay with a hole.
"""

from __future__ import annotations

from collections.abc import Callable

from . import replies
from .delivery import Delivery
from .envelope import RoomMessage, envelope_head
from .frames import text_frame
from .history import ApplyStatus
from .hub import Hub
from .outbox import Outbox
from .policy import RoomPolicy
from .sequencer import Resync
from .streams import Streams

__all__ = ["NodeHistory"]


class NodeHistory:
    """The :class:`~lucent_ws.cluster.HistoryTarget` of a manager."""

    __slots__ = ("_delivery", "_hub", "_outbox", "_policy", "_streams", "resyncs_sent")

    def __init__(
        self,
        hub: Hub,
        delivery: Delivery,
        outbox: Outbox,
        streams: Streams,
        policy: Callable[[str], RoomPolicy],
    ) -> None:
        self._hub = hub
        self._delivery = delivery
        self._outbox = outbox
        self._streams = streams
        self._policy = policy
        self.resyncs_sent = 0
        """``resync`` messages queued for clients since the start."""

    def policy(self, room: str) -> RoomPolicy | None:
        """The room's policy if it keeps history."""
        policy = self._policy(room)
        return policy if policy.history_size else None

    def local_rooms(self) -> list[str]:
        """History rooms with members here."""
        return [room for room in self._hub.rooms if self._policy(room).history_size]

    def deliver(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        """Deliver to local members and keep it under its offset in the mirror."""
        policy = self._policy(message.room)
        if policy.history_size and message.offset is not None and message.epoch is not None:
            head = envelope_head(message.room, message.sender, message.payload)
            store = self._streams.store
            result = store.apply(message.room, policy, message.offset, message.epoch, head)
            if result.status == ApplyStatus.GAP:
                # Messages this node never saw (a room it followed without members):
                # the mirror restarts here; recoveries before it read the backend.
                store.reset(message.room, policy, message.epoch, message.offset - 1)
                store.apply(message.room, policy, message.offset, message.epoch, head)
        return self._delivery.room(message, exclude)

    def resync(self, resync: Resync) -> int:
        """Tell the room's local v2 members to refetch; the mirror restarts at the position."""
        policy = self._policy(resync.room)
        if policy.history_size:
            self._streams.store.reset(resync.room, policy, resync.epoch, resync.offset)
        members = self._hub.v2_rooms.get(resync.room)
        if not members:
            return 0
        data = replies.encode_resync(resync.room, resync.reason, resync.epoch, resync.offset)
        count = self._outbox.fanout(list(members.values()), text_frame(data), [])
        self.resyncs_sent += count
        return count
