"""Configuration values shared by the manager, the handler and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import ConfigurationError

__all__ = ["DEFAULT_RECONNECT_WITHIN", "HeartbeatConfig", "Limits"]

DEFAULT_RECONNECT_WITHIN: Final = 5.0
"""Seconds v2 clients spread their reconnects over after a drain (``--reconnect-within``)."""


@dataclass(frozen=True, slots=True)
class HeartbeatConfig:
    """Heartbeat timing in seconds: ping every ``interval``, evict after ``timeout``."""

    interval: float = 30.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ConfigurationError("heartbeat interval and timeout must be positive")
        if self.timeout > self.interval:
            raise ConfigurationError(
                f"heartbeat timeout ({self.timeout}s) must not exceed its interval "
                f"({self.interval}s)"
            )


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection and per-server limits. A rate limit of 0 turns rate limiting off."""

    max_message_size: int = 64 * 1024
    """Largest inbound message in bytes, inclusive; larger ones close with 1009."""
    max_rooms: int = 100
    """Rooms one connection may be in at once; over it ``too_many_rooms``."""
    rate_limit: float = 100.0
    """Sustained inbound messages per second per connection (token bucket); 0: off."""
    rate_burst: int = 200
    """Token bucket size: messages a connection may send at once."""
    error_budget: int = 100
    """Error replies allowed within ``error_window`` seconds before closing with 1008."""
    error_window: float = 10.0
    max_outbound_buffer: int = 1024 * 1024
    """Bytes queued for one peer before it is evicted as a slow consumer (1013)."""
    max_connections: int = 10_000
    """Connections served at once; further handshakes get 503."""

    def __post_init__(self) -> None:
        positive = {
            "max_message_size": self.max_message_size,
            "max_rooms": self.max_rooms,
            "max_outbound_buffer": self.max_outbound_buffer,
            "max_connections": self.max_connections,
            "error_budget": self.error_budget,
            "error_window": self.error_window,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"{name} must be positive, got {value}")
        if self.rate_limit < 0 or self.rate_burst < 0:
            raise ConfigurationError("rate_limit and rate_burst must not be negative")
        if self.rate_limit > 0 and self.rate_burst < 1:
            raise ConfigurationError("rate_burst must be at least 1 when rate_limit is on")
