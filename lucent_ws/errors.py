"""The exceptions lucent_ws raises, all under one base class.

::

    LucentWSError
    ├── ConfigurationError      invalid settings (e.g. heartbeat timeout > interval)
    ├── ProtocolError           a client message the wire protocol rejects
    │   └── Forbidden               a hook refuses a client's publish
    ├── HandshakeError          a WebSocket handshake refused before the upgrade
    │   ├── OriginRejected          403, Origin not allowed
    │   ├── HostRejected            403, Host not served (DNS rebinding)
    │   ├── AuthenticationFailed    401, missing or invalid credentials
    │   ├── UnsupportedVersion      400, ``?v=`` names no protocol version
    │   └── ServiceUnavailable      503, connection limit reached or draining
    └── BrokerError             the cross-node broker failed (scale-out)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BrokerError",
    "ConfigurationError",
    "Forbidden",
    "HandshakeError",
    "HostRejected",
    "LucentWSError",
    "OriginRejected",
    "ProtocolError",
    "ServiceUnavailable",
    "UnsupportedVersion",
]


class LucentWSError(Exception):
    """Base class of every exception lucent_ws raises on purpose."""


class ConfigurationError(LucentWSError, ValueError):
    """A setting is invalid."""


class ProtocolError(LucentWSError):
    """A client message violates the wire protocol.

    ``code`` is the error code sent to the client (``invalid_json``,
    ``invalid_message``, ``unknown_type``, ...), ``message`` its human text and
    ``ref`` the message's valid ``ref`` to echo, if any.
    """

    def __init__(self, code: str, message: str, ref: int | str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref


class Forbidden(ProtocolError):
    """Raised by an ``on_publish`` hook to refuse a client's broadcast.

    The sender gets ``publish_forbidden`` with ``message`` (or a default text).
    """

    def __init__(self, message: str = "Publishing to this room is not allowed") -> None:
        super().__init__("publish_forbidden", message)


class HandshakeError(LucentWSError):
    """A handshake refused before the upgrade; ``status`` is the HTTP status."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OriginRejected(HandshakeError):
    """The Origin header names a site that is not allowed (403)."""

    status = 403
    reason = "origin"


class HostRejected(HandshakeError):
    """The Host header names a host this hub does not serve (403)."""

    status = 403
    reason = "host"


class AuthenticationFailed(HandshakeError):
    """Credentials are missing where required, or invalid (401)."""

    status = 401
    reason = "auth"


class UnsupportedVersion(HandshakeError):
    """The ``v`` query parameter names a protocol version the hub does not speak (400)."""

    status = 400
    reason = "unsupported_version"


class ServiceUnavailable(HandshakeError):
    """The connection limit is reached or the server is draining (503)."""

    status = 503
    reason = "unavailable"


class BrokerError(LucentWSError):
    """The cross-node broker could not carry a message."""
