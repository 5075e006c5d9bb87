"""Per-connection protocol handling: what the server does with each client frame.

Pure (asyncio only): the aiohttp handler feeds frames in, strictly one at a
time, and the session answers through the manager's outbound path. Bad input
gets one error reply; past the error budget, or when the rate limit keeps
being hit, the connection is closed with 1008.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from typing import Final

from . import jsoncodec, protocol, replies
from .codes import CloseCode, EvictionReason
from .config import Limits
from .connection import Connection
from .envelope import V2, RoomMessage
from .errors import ProtocolError
from .history_requests import ack, answer_history, check_room_full, join_history, publish
from .hooks import Hooks, call
from .manager import WebSocketManager
from .presence_hub import encode_presence
from .protocol import (
    AppMessage,
    Broadcast,
    ErrorCode,
    History,
    Join,
    Leave,
    Ping,
    Pong,
    Presence,
    Ref,
)
from .streams import Published

__all__ = ["Session", "TokenBucket"]

logger = logging.getLogger("lucent_ws.session")

_NO_HOOKS: Final = Hooks()

_UNSUPPORTED_DATA_TEXT: Final = "Binary frames are not supported; send JSON text"
MAX_CONFIRMING: Final = 32
"""History publishes through a broker awaiting their offset, per connection, at most."""


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Take one token; False if the bucket is empty."""
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True


class Session:
    """The protocol state of one connection: rate limit, error budget, dispatch."""

    __slots__ = (
        "_bucket",
        "_confirming",
        "_errors",
        "_hooks",
        "_last_confirm",
        "conn",
        "limits",
        "manager",
    )

    def __init__(
        self,
        manager: WebSocketManager,
        conn: Connection,
        limits: Limits,
        *,
        hooks: Hooks = _NO_HOOKS,
    ) -> None:
        self.manager = manager
        self.conn = conn
        self.limits = limits
        self._hooks = hooks
        self._bucket = (
            TokenBucket(limits.rate_limit, limits.rate_burst, manager.now())
            if limits.rate_limit > 0
            else None
        )
        self._errors: deque[float] | None = None
        self._confirming: set[asyncio.Task[None]] = set()
        self._last_confirm: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        """False once the connection was removed from the manager."""
        return not self.conn.closed

    def _reply(self, data: bytes) -> None:
        self.manager.send_encoded(self.conn, data)

    def _error(self, code: str, message: str, ref: Ref | None = None) -> None:
        """Send one error reply and charge it to the error budget.

        ``unavailable`` is the server's condition (its broker is down), not the
        client's fault: a client retrying its publish through an outage is not charged.
        """
        self._reply(replies.encode_error(code, message, ref))
        if code == ErrorCode.UNAVAILABLE:
            return
        now = self.manager.now()
        errors = self._errors
        if errors is None:
            errors = self._errors = deque(maxlen=self.limits.error_budget + 1)
        errors.append(now)
        if len(errors) > self.limits.error_budget and now - errors[0] <= self.limits.error_window:
            reason = (
                EvictionReason.RATE_LIMIT
                if code == ErrorCode.RATE_LIMITED
                else EvictionReason.ABUSE
            )
            self.manager.evict(
                self.conn.id,
                CloseCode.POLICY_VIOLATION,
                reason,
                "Too many errors" if reason == EvictionReason.ABUSE else "Rate limit exceeded",
                discard=False,
            )

    def _admit(self) -> bool:
        """Record an inbound frame (liveness too); False if it is over the rate limit."""
        self.manager.counters.messages_in += 1
        self.manager.touch(self.conn)
        bucket = self._bucket
        return bucket is None or bucket.take(self.conn.last_seen)

    def internal_error(self, ref: Ref | None = None) -> None:
        """Answer ``internal_error`` (a hook failed), if the connection is still open."""
        if self.open:
            self._error(ErrorCode.INTERNAL_ERROR, "Internal server error", ref)

    def _rate_limited(self, ref: Ref | None = None) -> None:
        self._error(ErrorCode.RATE_LIMITED, "Rate limit exceeded; slow down", ref)

    def on_binary(self) -> None:
        """A binary frame arrived: answer ``unsupported_data``."""
        if self._admit():
            self._error(ErrorCode.UNSUPPORTED_DATA, _UNSUPPORTED_DATA_TEXT)
        else:
            self._rate_limited()

    def on_ping_frame(self) -> bool:
        """A protocol PING frame arrived: True if it is to be answered with a PONG.

        Control frames take a token from the same bucket as messages; over the
        limit they are not answered but get ``rate_limited``, which counts
        against the error budget like any other.
        """
        return self._admit_control()

    def on_pong_frame(self) -> None:
        """A protocol PONG frame arrived: liveness, and a token like any frame."""
        self._admit_control()

    def _admit_control(self) -> bool:
        self.manager.touch(self.conn)
        bucket = self._bucket
        if bucket is None or bucket.take(self.conn.last_seen):
            return True
        if self.open:
            self._rate_limited()
        return False

    async def on_text(self, text: str) -> None:
        """Handle one text frame completely (hooks included) before returning.

        Except a publish to a history room through a broker: it waits for the
        backend in the background (at most :data:`MAX_CONFIRMING` per connection),
        and its ``ack`` or error follows.
        """
        if not self._admit():
            self._rate_limited(protocol.peek_ref(text))
            return
        try:
            message = protocol.parse(
                text, version=self.conn.version, app_types=self.manager.message_handlers
            )
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.ref)
            return
        try:
            await self._dispatch(message)
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.ref)
        except Exception:
            logger.exception("hook failed for connection %s (%s)", self.conn.id, _kind(message))
            self.internal_error(message.ref)

    async def _dispatch(self, message: protocol.ClientMessage | AppMessage) -> None:
        match message:
            case Broadcast():
                await self._broadcast(message)
            case Join():
                await self._join(message)
            case Leave(room=room, ref=ref):
                left = self.manager.leave_room(self.conn.id, room)
                self._reply(replies.encode_left(room, ref))
                if left and self._hooks.on_leave_room is not None:
                    await call(self._hooks.on_leave_room, room, self.conn)
            case Ping(ref=ref):
                self._reply(replies.encode_pong(ref))
            case Pong():
                pass  # liveness was recorded on arrival
            case Presence(room=room, ref=ref):
                self._presence(room, ref)
            case History():
                self._reply(await answer_history(self.manager, self.conn, message))
            case AppMessage():
                await self._application(message)

    async def _join(self, message: Join) -> None:
        conn, room, ref = self.conn, message.room, message.ref
        policy = self.manager.policies.for_room(room)
        history = policy.history_size > 0 and conn.version == V2
        if room in conn.rooms:
            if history:
                await join_history(self.manager, conn, message, policy)
            else:
                self._reply(replies.encode_joined(room, ref))
            return
        if len(conn.rooms) >= self.limits.max_rooms:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS,
                f"Too many rooms: at most {self.limits.max_rooms} per connection",
                ref,
            )
        hook = self._hooks.on_join_room
        if hook is not None:
            allowed = await call(hook, room, conn)
            if not self.open:
                return  # closed while the hook ran: never a zombie member
            if not allowed:
                raise ProtocolError(ErrorCode.FORBIDDEN, f"Access denied to room '{room}'", ref)
        check_room_full(self.manager, room, policy, ref)
        if history:
            await join_history(self.manager, conn, message, policy)
            return
        self.manager.join_room(conn.id, room)
        self._reply(replies.encode_joined(room, ref))

    def _presence(self, room: str, ref: Ref | None) -> None:
        if not self.manager.policies.for_room(room).presence:
            raise ProtocolError(ErrorCode.PRESENCE_DISABLED, f"Room '{room}' has no presence", ref)
        if room not in self.conn.rooms:
            raise ProtocolError(ErrorCode.NOT_MEMBER, f"Not a member of room '{room}'", ref)
        self._reply(encode_presence(room, self.manager.presence.for_member(room), ref))

    async def _broadcast(self, message: Broadcast) -> None:
        conn, room, ref = self.conn, message.room, message.ref
        if room not in conn.rooms:
            raise ProtocolError(ErrorCode.NOT_MEMBER, f"Not a member of room '{room}'", ref)
        policy = self.manager.policies.for_room(room)
        if policy.client_publish == "none":
            raise ProtocolError(
                ErrorCode.PUBLISH_FORBIDDEN, f"Clients may not publish to room '{room}'", ref
            )
        payload = message.payload
        hook = self._hooks.on_publish
        if hook is not None:
            try:
                payload = await call(hook, room, conn, payload)
            except ProtocolError as exc:  # Forbidden: the hook's own refusal text
                raise ProtocolError(exc.code, exc.message, ref) from None
            if not self.open or room not in conn.rooms:
                return  # closed or left while the hook ran
        data = jsoncodec.dumps(payload)
        message_out = RoomMessage(room, data, conn.id)
        if policy.history_size and self.manager.cluster.history is not None:
            # The backend assigns the offset (``unavailable`` when down). The next
            # frames are read meanwhile, so a client's publishes share round trips;
            # they keep their order (the backend takes one batch at a time).
            await self._confirm_later(
                publish(self.manager, message_out, ref, message.id, (conn.id,)), ref
            )
            return
        published = self.manager.publish_tracked(message_out, (conn.id,), message.id)
        if ref is not None and self.open:
            self._reply(ack(ref, published))

    async def _confirm_later(self, pending: Awaitable[Published], ref: Ref | None) -> None:
        confirming = self._confirming
        while len(confirming) >= MAX_CONFIRMING:
            await asyncio.wait(confirming, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.get_running_loop().create_task(
            self._confirm(pending, ref, self._last_confirm)
        )
        self._last_confirm = task
        confirming.add(task)
        task.add_done_callback(confirming.discard)

    async def _confirm(
        self,
        pending: Awaitable[Published],
        ref: Ref | None,
        before: asyncio.Task[None] | None,
    ) -> None:
        published: Published | None = None
        failure: ProtocolError | None = None
        try:
            published = await pending
        except ProtocolError as exc:
            failure = exc
        except Exception:
            logger.exception("publish failed for connection %s", self.conn.id)
        if before is not None and not before.done():
            # Answered in the order sent: an `unavailable` refused at once (the broker
            # went down) must not overtake an earlier publish still waiting for Redis.
            await asyncio.wait((before,))
        if not self.open:
            return
        if failure is not None:
            self._error(failure.code, failure.message, failure.ref)
        elif published is None:
            self.internal_error(ref)
        elif ref is not None:
            self._reply(ack(ref, published))

    async def _application(self, message: AppMessage) -> None:
        handler = self.manager.message_handlers[message.type]
        result = await call(handler, self.conn, message.data)
        if self.open and (result is not None or message.ref is not None):
            self._reply(replies.encode_reply(message.ref, result))


def _kind(message: protocol.ClientMessage | AppMessage) -> str:
    return message.type if isinstance(message, AppMessage) else type(message).__name__
