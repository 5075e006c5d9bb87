"""The codes lucent_ws puts on the wire and in its stats: close codes and eviction reasons."""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = ["CloseCode", "EvictionReason"]


class CloseCode(IntEnum):
    """WebSocket close codes the server sends."""

    GOING_AWAY = 1001
    """The server is shutting down."""
    PROTOCOL_ERROR = 1002
    """The client broke RFC 6455 (an unmasked frame)."""
    POLICY_VIOLATION = 1008
    """Sustained rate-limit or error abuse, or expired credentials."""
    MESSAGE_TOO_BIG = 1009
    """An inbound message over the size limit."""
    INTERNAL_ERROR = 1011
    """The server failed while serving the connection."""
    TRY_AGAIN_LATER = 1013
    """Slow consumer: the outbound buffer passed its limit."""
    HEARTBEAT_TIMEOUT = 4000
    """No liveness within the heartbeat timeout."""
    DISCONNECTED = 4001
    """Closed on purpose by the server (admin kick, ``disconnect(id)``)."""


class EvictionReason(StrEnum):
    """Why the server closed a connection: the labels of the ``evictions`` stats."""

    HEARTBEAT = "heartbeat"
    SLOW_CONSUMER = "slow_consumer"
    KICK = "kick"
    RATE_LIMIT = "rate_limit"
    ABUSE = "abuse"
    EXPIRED = "expired"
    INTERNAL_ERROR = "internal_error"
    PROTOCOL_ERROR = "protocol_error"
