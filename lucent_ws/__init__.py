"""lucent_ws: an embeddable realtime hub for aiohttp.

Rooms, direct messages, broadcasts, per-connection metadata, stats and a
heartbeat in one in-process :class:`WebSocketManager`, served over a JSON
WebSocket protocol with an admin HTTP API and a dashboard.

Quick use::

    from aiohttp import web
    import lucent_ws

    app = web.Application()
    app.add_subapp("/realtime/", lucent_ws.create_app())
    # anywhere on the event loop:
    lucent_ws.ws_manager.broadcast_to_room("posts", {"type": "post:created"})
"""

from __future__ import annotations

from .accesslog import SafeAccessLogger
from .admin import create_admin_app
from .app import create_app, drain, setup
from .auth import CredentialReader, jwt_authenticator, token_authenticator
from .codes import CloseCode, EvictionReason
from .config import HeartbeatConfig, Limits
from .connection import Connection
from .errors import (
    AuthenticationFailed,
    BrokerError,
    ConfigurationError,
    Forbidden,
    HandshakeError,
    LucentWSError,
    OriginRejected,
    ProtocolError,
    ServiceUnavailable,
    Unavailable,
)
from .handler import WebSocketHandler, websocket_handler
from .keys import HANDLER_KEY, MANAGER_KEY, STATE_KEY
from .manager import WebSocketManager, ws_manager
from .policy import Policies, RoomPolicy
from .version import __version__

__all__ = [
    "HANDLER_KEY",
    "MANAGER_KEY",
    "STATE_KEY",
    "AuthenticationFailed",
    "BrokerError",
    "CloseCode",
    "ConfigurationError",
    "Connection",
    "CredentialReader",
    "EvictionReason",
    "Forbidden",
    "HandshakeError",
    "HeartbeatConfig",
    "Limits",
    "LucentWSError",
    "OriginRejected",
    "Policies",
    "ProtocolError",
    "RoomPolicy",
    "SafeAccessLogger",
    "ServiceUnavailable",
    "Unavailable",
    "WebSocketHandler",
    "WebSocketManager",
    "__version__",
    "create_admin_app",
    "create_app",
    "drain",
    "jwt_authenticator",
    "setup",
    "token_authenticator",
    "websocket_handler",
    "ws_manager",
]
