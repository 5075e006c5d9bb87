"""Per-connection protocol handling: what the server does with each client frame.

Pure (asyncio only): the aiohttp handler feeds frames in, strictly one at a
time, and the session answers through the manager's outbound path. Bad input
gets one error reply; past the error budget, or when the rate limit keeps
being hit, the connection is closed with 1008.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from . import protocol
from .codes import CloseCode, EvictionReason
from .config import Limits
from .connection import Connection
from .errors import ProtocolError
from .manager import WebSocketManager
from .protocol import Broadcast, ErrorCode, Join, Leave, Ping, Pong, Ref

__all__ = ["JoinHook", "Session", "TokenBucket"]

logger = logging.getLogger("lucent_ws.session")

JoinHook = Callable[[str, Connection], bool | Awaitable[bool]]
"""``on_join_room(room, conn)``: return (or resolve to) True to allow the join."""

_UNSUPPORTED_DATA_TEXT: Final = "Binary frames are not supported; send JSON text"


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

    __slots__ = ("_bucket", "_errors", "_on_join_room", "conn", "limits", "manager")

    def __init__(
        self,
        manager: WebSocketManager,
        conn: Connection,
        limits: Limits,
        *,
        on_join_room: JoinHook | None = None,
    ) -> None:
        self.manager = manager
        self.conn = conn
        self.limits = limits
        self._on_join_room = on_join_room
        self._bucket = (
            TokenBucket(limits.rate_limit, limits.rate_burst, manager.now())
            if limits.rate_limit > 0
            else None
        )
        self._errors: deque[float] | None = None

    @property
    def open(self) -> bool:
        """False once the connection was removed from the manager."""
        return not self.conn.closed

    def _reply(self, data: bytes) -> None:
        self.manager.send_encoded(self.conn, data)

    def _error(self, code: str, message: str, ref: Ref | None = None) -> None:
        """Send one error reply and charge it to the error budget."""
        self._reply(protocol.encode_error(code, message, ref))
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
        """Handle one text frame completely (hooks included) before returning."""
        if not self._admit():
            self._rate_limited(protocol.peek_ref(text))
            return
        try:
            message = protocol.parse(text)
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.ref)
            return
        try:
            await self._dispatch(message)
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.ref)
        except Exception:
            logger.exception(
                "hook failed for connection %s (%s)", self.conn.id, type(message).__name__
            )
            if self.open:
                self._error(ErrorCode.INTERNAL_ERROR, "Internal server error", message.ref)

    async def _dispatch(self, message: protocol.ClientMessage) -> None:
        match message:
            case Join():
                await self._join(message)
            case Leave(room=room, ref=ref):
                self.manager.leave_room(self.conn.id, room)
                self._reply(protocol.encode_left(room, ref))
            case Broadcast():
                self._broadcast(message)
            case Ping(ref=ref):
                self._reply(protocol.encode_pong(ref))
            case Pong():
                pass  # liveness was recorded on arrival

    async def _join(self, message: Join) -> None:
        conn, room, ref = self.conn, message.room, message.ref
        if room in conn.rooms:
            self._reply(protocol.encode_joined(room, ref))
            return
        if len(conn.rooms) >= self.limits.max_rooms:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS,
                f"Too many rooms: at most {self.limits.max_rooms} per connection",
                ref,
            )
        hook = self._on_join_room
        if hook is not None:
            allowed = hook(room, conn)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not self.open:
                return  # closed while the hook ran: never a zombie member
            if not allowed:
                raise ProtocolError(ErrorCode.FORBIDDEN, f"Access denied to room '{room}'", ref)
        self.manager.join_room(conn.id, room)
        self._reply(protocol.encode_joined(room, ref))

    def _broadcast(self, message: Broadcast) -> None:
        conn, room, ref = self.conn, message.room, message.ref
        if room not in conn.rooms:
            raise ProtocolError(ErrorCode.NOT_MEMBER, f"Not a member of room '{room}'", ref)
        data = protocol.encode_message(room, conn.id, message.payload)
        delivered = self.manager.broadcast_encoded(room, data, exclude=(conn.id,))
        if ref is not None:
            self._reply(protocol.encode_ack(ref, delivered))
