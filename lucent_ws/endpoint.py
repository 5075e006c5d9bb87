"""Building a WebSocket endpoint from keyword options: one owner per setting.

:func:`websocket_handler`, :func:`~lucent_ws.setup` and :func:`~lucent_ws.create_app`
all take the :class:`EndpointOptions`. The manager owns its heartbeat and room
policies; an option configures only the default manager and never overrides a
manager passed in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypedDict, Unpack

from aiohttp import web

from .auth import Authenticator, hide_offered_protocols
from .config import HeartbeatConfig, Limits
from .errors import ConfigurationError
from .handler import WebSocketHandler
from .hooks import ConnectHook, DisconnectHook, Hooks, JoinHook, LeaveHook, PublishHook
from .hosts import HostPolicy
from .manager import WebSocketManager, ws_manager
from .origin import OriginPolicy
from .policy import Policies, RoomPolicy

__all__ = ["EndpointOptions", "build_endpoint", "websocket_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EndpointOptions(TypedDict, total=False):
    """Keyword options of a WebSocket endpoint: :func:`websocket_handler`,
    :func:`~lucent_ws.setup` and :func:`~lucent_ws.create_app` all take them."""

    manager: WebSocketManager | None
    """The hub to serve; :data:`lucent_ws.ws_manager` by default."""
    heartbeat: HeartbeatConfig | bool | None
    """The default manager's heartbeat: a :class:`HeartbeatConfig`, True for the
    defaults (30 s / 10 s), False for none; omitted, the manager's own. A manager
    passed as ``manager`` keeps its own: a different ``heartbeat`` is refused with
    :class:`~lucent_ws.errors.ConfigurationError`."""
    policies: Iterable[RoomPolicy] | Policies | None
    """The default manager's room policies (:class:`~lucent_ws.policy.RoomPolicy`);
    omitted, the manager's own. Like ``heartbeat``, a manager passed as ``manager``
    keeps its own and a different value is refused."""
    on_connect: ConnectHook | None
    """``on_connect(conn)``, sync or async, once the connection is registered."""
    on_disconnect: DisconnectHook | None
    """``on_disconnect(conn, code)``, sync or async, once the connection is gone."""
    on_join_room: JoinHook | None
    """``on_join_room(room, conn)``, sync or async: True allows the join."""
    on_leave_room: LeaveHook | None
    """``on_leave_room(room, conn)``, sync or async, after a client's ``leave``."""
    on_publish: PublishHook | None
    """``on_publish(room, conn, payload)``, sync or async: the payload to send, or
    raise :class:`~lucent_ws.errors.Forbidden` (``publish_forbidden``)."""
    authenticate: Authenticator | None
    """``authenticate(request)`` at the handshake: an identity mapping or None."""
    require_auth: bool
    """Refuse anonymous handshakes with 401."""
    allowed_origins: Iterable[str]
    """Allowed ``Origin``s (``"*"`` for any); none: the request's own host only."""
    allowed_hosts: Iterable[str]
    """Allowed ``Host`` names (``"*"`` for any, ``".example.com"`` for a domain); none:
    requests arriving on loopback must name ``localhost``, ``127.0.0.1`` or ``[::1]``."""
    limits: Limits | None
    """Per-connection and per-server limits."""


def websocket_handler(**options: Unpack[EndpointOptions]) -> Handler:
    """An aiohttp handler for your own route, e.g. ``app.router.add_get("/live", h)``.

    Takes the :class:`EndpointOptions`.
    """
    return build_endpoint(**options).handle


def build_endpoint(**options: Unpack[EndpointOptions]) -> WebSocketHandler:
    """The endpoint behind :func:`websocket_handler`, for callers that need its state."""
    hide_offered_protocols()
    manager = _serve(options.get("manager"), options.get("heartbeat"), options.get("policies"))
    return WebSocketHandler(
        manager=manager,
        limits=options.get("limits") or Limits(),
        origins=OriginPolicy(options.get("allowed_origins", ())),
        hosts=HostPolicy(options.get("allowed_hosts", ())),
        hooks=Hooks(
            on_connect=options.get("on_connect"),
            on_disconnect=options.get("on_disconnect"),
            on_join_room=options.get("on_join_room"),
            on_leave_room=options.get("on_leave_room"),
            on_publish=options.get("on_publish"),
        ),
        authenticate=options.get("authenticate"),
        require_auth=options.get("require_auth", False),
    )


def _serve(
    manager: WebSocketManager | None,
    heartbeat: HeartbeatConfig | bool | None,
    policies: Iterable[RoomPolicy] | Policies | None,
) -> WebSocketManager:
    """The manager an endpoint serves, with the heartbeat and policies options applied.

    The manager owns both settings. An option configures the default manager
    (at once, so the last endpoint created wins); a manager passed in keeps its
    own, and an option that contradicts it is refused rather than ignored.
    """
    wanted = None if policies is None else _policies(policies)
    if manager is None:
        if heartbeat is not None:
            ws_manager.configure_heartbeat(_heartbeat_config(heartbeat))
        if wanted is not None:
            ws_manager.policies = wanted
        return ws_manager
    if heartbeat is not None and _heartbeat_config(heartbeat) != manager.heartbeat_config:
        raise ConfigurationError(
            f"heartbeat={heartbeat!r} contradicts the manager's own heartbeat "
            f"({manager.heartbeat_config!r}): configure it with WebSocketManager(heartbeat=...)"
        )
    if wanted is not None and list(wanted) != list(manager.policies):
        raise ConfigurationError(
            "policies contradict the manager's own: configure them with "
            "WebSocketManager(policies=...)"
        )
    return manager


def _policies(policies: Iterable[RoomPolicy] | Policies) -> Policies:
    return policies if isinstance(policies, Policies) else Policies(policies)


def _heartbeat_config(heartbeat: HeartbeatConfig | bool | None) -> HeartbeatConfig | None:
    if heartbeat is True:
        return HeartbeatConfig()
    if heartbeat is False or heartbeat is None:
        return None
    return heartbeat
