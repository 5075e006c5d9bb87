"""A joined room as the application sees it: ``async for msg in room``, publish, presence."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from .state import Ack, Message, Position, PresenceState

if TYPE_CHECKING:
    from .core import Client

__all__ = ["Room", "Stream"]


class Stream:
    """Messages in arrival order; ``async for`` ends when the stream is closed.

    Unbounded: a consumer that stops reading keeps the messages in memory.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._ended = False

    def _put(self, message: Message) -> None:
        if not self._ended:
            self._queue.put_nowait(message)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)

    @property
    def ended(self) -> bool:
        """True once no more messages will come (left, or the client closed)."""
        return self._ended

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # every other reader ends too
            raise StopAsyncIteration
        return item


class Room(Stream):
    """A room the client joined; re-joined with ``since`` after every reconnect."""

    def __init__(self, client: Client, name: str, *, presence: bool = False) -> None:
        super().__init__()
        self._client = client
        self.name = name
        self.position = Position()
        """The last ``epoch``/``offset`` seen (rooms with history)."""
        self.presence = PresenceState()
        """Members by key, kept up to date from ``presence_diff`` (with ``presence=True``)."""
        self.wants_presence = presence
        self.joined = False
        """True while the current connection is a member."""
        self.asked_since = False
        self.ever_joined = False

    @property
    def epoch(self) -> str | None:
        """The room stream's epoch, once known."""
        return self.position.epoch

    @property
    def offset(self) -> int | None:
        """The offset of the last message seen (or of the top at join)."""
        return self.position.offset

    async def publish(
        self, payload: Any, *, timeout: float | None = None, id: str | None = None
    ) -> Ack:
        """Publish ``payload`` to the room; the :class:`Ack` once the server took it.

        Every publish carries an ``id`` (a new one unless given): after a
        :class:`~lucent_ws.errors.RequestTimeout` or
        :class:`~lucent_ws.errors.Disconnected` (their ``publish_id``), publishing
        again with that id is published at most once in a history room.
        """
        publish_id = id or uuid.uuid4().hex
        frame = {"type": "broadcast", "room": self.name, "payload": payload, "id": publish_id}
        reply = await self._client.call(frame, timeout, publish_id=publish_id)
        delivered = reply.get("delivered")
        offset = reply.get("offset")
        epoch = reply.get("epoch")
        return Ack(
            id=publish_id,
            delivered=delivered if isinstance(delivered, int) else 0,
            offset=offset if isinstance(offset, int) else None,
            epoch=epoch if isinstance(epoch, str) else None,
            duplicate=reply.get("duplicate") is True,
        )

    async def history(
        self, *, since: dict[str, Any] | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """The server's ``history`` answer for this room (``messages``, ``epoch``, ``offset``)."""
        frame: dict[str, Any] = {"type": "history", "room": self.name}
        if since is not None:
            frame["since"] = since
        if limit is not None:
            frame["limit"] = limit
        return await self._client.call(frame, None)

    async def refresh_presence(self, *, timeout: float | None = None) -> PresenceState:
        """Fetch the full presence (``presence_disabled`` raises ``RequestFailed``)."""
        await self._client.call({"type": "presence", "room": self.name}, timeout)
        return self.presence  # the client applied the answer in arrival order

    async def leave(self, *, timeout: float | None = None) -> None:
        """Leave the room: no re-join any more, and ``async for`` ends."""
        await self._client.leave(self.name, timeout=timeout)

    def __repr__(self) -> str:
        return f"<Room {self.name!r} epoch={self.epoch!r} offset={self.offset!r}>"
