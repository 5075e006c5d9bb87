"""The exceptions lucent_ws raises, all under one base class.

::

    LucentWSError
    ├── ConfigurationError      invalid settings (e.g. heartbeat timeout > interval)
    ├── ProtocolError           a client message the wire protocol rejects
    │   ├── Forbidden               a hook refuses a client's publish
    │   └── Unavailable             a history room cannot take a publish (broker down)
    ├── HandshakeError          a WebSocket handshake refused before the upgrade
    │   ├── OriginRejected          403, Origin not allowed
    │   ├── HostRejected            403, Host not served (DNS rebinding)
    │   ├── AuthenticationFailed    401, missing or invalid credentials
    │   ├── UnsupportedVersion      400, ``?v=`` names no protocol version
    │   └── ServiceUnavailable      503, connection limit reached or draining
    ├── BrokerError             the cross-node broker failed (scale-out)
    └── ClientError             raised by the official client (:mod:`lucent_ws.client`)
        ├── RequestFailed           the server answered a request with an error
        ├── RequestTimeout          no answer within the request's timeout
        ├── Disconnected            the connection dropped before the answer
        └── ConnectionClosed        the client stopped for good (kick, 1008, 401, 403, close())
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BrokerError",
    "ClientError",
    "ConfigurationError",
    "ConnectionClosed",
    "Disconnected",
    "Forbidden",
    "HandshakeError",
    "HostRejected",
    "LucentWSError",
    "OriginRejected",
    "ProtocolError",
    "RequestFailed",
    "RequestTimeout",
    "ServiceUnavailable",
    "Unavailable",
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


class Unavailable(ProtocolError):
    """A history room cannot take a publish now: the broker that assigns offsets is down.

    Nothing was published and no offset was handed out; the client gets
    ``unavailable`` and may retry (with the same publish id).
    """

    def __init__(self, message: str = "History is unavailable: the broker is down") -> None:
        super().__init__("unavailable", message)


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


# --- the official client ---------------------------------------------------------------


class ClientError(LucentWSError):
    """Base of the errors of :mod:`lucent_ws.client`.

    ``publish_id`` is the ``id`` of the publish that failed, if it was one:
    publishing again with the same id is published at most once.
    """

    def __init__(self, message: str, *, publish_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.publish_id = publish_id


class RequestFailed(ClientError):
    """The server answered a request with ``{"type": "error"}``; ``code`` is its code."""

    def __init__(self, code: str, message: str, *, publish_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}", publish_id=publish_id)
        self.code = code


class RequestTimeout(ClientError):
    """No answer within the request's timeout; it may or may not have been handled."""


class Disconnected(ClientError):
    """The connection dropped (or was not up) before the answer; never resent."""


class ConnectionClosed(ClientError):
    """The client stopped for good; ``code`` is the close code or HTTP status, if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
