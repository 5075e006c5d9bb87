"""The public API of history rooms, cluster-wide: publish with a position, read history.

:class:`HistoryRooms` is a part of :class:`~lucent_ws.manager.WebSocketManager`:
on a single node a history room's messages get their offsets from the manager's
:class:`~lucent_ws.streams.Streams`; with a broker, from the backend
(:mod:`lucent_ws.broker.history`), and every node delivers them from the bus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import jsoncodec
from .cluster import Cluster
from .delivery import Delivery, as_exclude_set
from .envelope import RoomMessage
from .errors import ConfigurationError
from .hub import Hub
from .policy import Policies
from .shared_reads import shared_page
from .streams import HistoryPage, Published, Streams, since_of

__all__ = ["HistoryRooms"]


class HistoryRooms:
    """Publishing to and reading history rooms (a part of the manager)."""

    policies: Policies
    streams: Streams
    _hub: Hub
    _delivery: Delivery
    _cluster: Cluster

    def publish_tracked(
        self, message: RoomMessage, exclude: Iterable[str] = (), publish_id: str | None = None
    ) -> Published:
        """Like :meth:`publish`, answering the message's offset and epoch in a history room.

        A ``publish_id`` already published in the room's history window publishes
        nothing and answers the original offset with ``duplicate=True``. With a
        broker the backend assigns offsets: the message is queued for it (in order
        with this node's other publishes) and the answer has no offset; use
        :meth:`publish_confirmed` to learn it.
        """
        policy = self.policies.for_room(message.room)
        excluded = as_exclude_set(exclude)
        if not policy.history_size:
            count = self._delivery.room(message, excluded)
            return Published(count + self._cluster.publish_room(message, excluded))
        shared = self._cluster.history
        if shared is not None:
            if not shared.append_later(message, policy, excluded):
                return Published(0)
            return Published(self._recipients(message.room, excluded))
        stamped, duplicate = self.streams.stamp(message, policy, publish_id)
        if duplicate:
            return Published(0, stamped.offset, stamped.epoch, True)
        count = self._delivery.room(stamped, excluded)
        count += self._cluster.publish_room(stamped, excluded)
        return Published(count, stamped.offset, stamped.epoch)

    async def publish_confirmed(
        self, message: RoomMessage, exclude: Iterable[str] = (), publish_id: str | None = None
    ) -> Published:
        """Like :meth:`publish_tracked`, once the message has its offset, with a broker too.

        With a broker, raises :class:`~lucent_ws.errors.Unavailable` for a history
        room while the broker is down: nothing is published, no offset handed out.
        """
        policy = self.policies.for_room(message.room)
        shared = self._cluster.history
        if shared is None or not policy.history_size:
            return self.publish_tracked(message, exclude, publish_id)
        excluded = as_exclude_set(exclude)
        done = await shared.append(message, policy, excluded, publish_id)
        if done.duplicate:
            return Published(0, done.offset, done.epoch, True)
        return Published(self._recipients(message.room, excluded), done.offset, done.epoch)

    def _recipients(self, room: str, excluded: frozenset[str]) -> int:
        local = self._hub.rooms.get(room, {})
        count = len(local) - sum(1 for conn_id in excluded if conn_id in local)
        return count + self._cluster.view.room_size(room, excluded)

    def get_history(
        self,
        room: str,
        since: Mapping[str, Any] | tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """A room's kept messages (v2 envelopes, oldest first), its epoch and top offset.

        ``since`` (``{"offset": N, "epoch": E}`` or ``(N, E)``): the messages after
        it, at most ``limit`` (in another epoch: every kept one); without it, the
        newest ``limit`` (default: all kept). Raises
        :class:`~lucent_ws.errors.ConfigurationError` for a room without history.
        With a broker this is this node's copy; :meth:`fetch_history` reads the backend.
        """
        policy = self.policies.for_room(room)
        if not policy.history_size:
            raise ConfigurationError(f"room {room!r} keeps no history")
        return self.streams.history_page(room, policy, since_of(since), limit)

    async def fetch_history(
        self,
        room: str,
        since: Mapping[str, Any] | tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """:meth:`get_history`, read from the broker's backend when there is one.

        Raises :class:`~lucent_ws.errors.Unavailable` while the broker is down.
        """
        shared = self._cluster.history
        if shared is None:
            return self.get_history(room, since, limit)
        page = await shared_page(shared, room, self.policies.for_room(room), since_of(since), limit)
        return HistoryPage(room, page[0].epoch, page[0].offset, jsoncodec.loads(page[1]))
