"""aiohttp integration: a ready app (:func:`create_app`) or an endpoint in yours (:func:`setup`)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from .auth import Authenticator
from .config import HeartbeatConfig, Limits
from .handler import WebSocketHandler, build_endpoint
from .keys import HANDLER_KEY, MANAGER_KEY, STATE_KEY
from .manager import CloseCode, WebSocketManager
from .session import JoinHook

__all__ = ["create_app", "drain", "mount_admin", "setup"]


def setup(
    app: web.Application,
    *,
    path: str = "/ws",
    manager: WebSocketManager | None = None,
    heartbeat: HeartbeatConfig | bool | None = True,
    on_join_room: JoinHook | None = None,
    authenticate: Authenticator | None = None,
    require_auth: bool = False,
    allowed_origins: Iterable[str] = (),
    limits: Limits | None = None,
) -> WebSocketHandler:
    """Add the WebSocket endpoint to an existing app, like the original plugin.

    Stores the manager, handler and shutdown state under the keys of
    :mod:`lucent_ws.keys`, and closes every connection with 1001 when the app
    shuts down. Returns the handler.
    """
    handler = build_endpoint(
        manager=manager,
        on_join_room=on_join_room,
        authenticate=authenticate,
        require_auth=require_auth,
        allowed_origins=allowed_origins,
        limits=limits,
        heartbeat=heartbeat,
    )
    app[MANAGER_KEY] = handler.manager
    app[HANDLER_KEY] = handler
    app[STATE_KEY] = handler.state
    app.router.add_get(path, handler.handle, name="lucent_ws")
    app.on_shutdown.append(drain)
    app.on_cleanup.append(_stop_heartbeat)
    return handler


def create_app(
    path: str = "/ws",
    *,
    manager: WebSocketManager | None = None,
    heartbeat: HeartbeatConfig | bool | None = True,
    on_join_room: JoinHook | None = None,
    authenticate: Authenticator | None = None,
    require_auth: bool = False,
    allowed_origins: Iterable[str] = (),
    limits: Limits | None = None,
    admin: bool = True,
    admin_token: str | None = None,
) -> web.Application:
    """A new aiohttp app serving the hub; run it or mount it with ``add_subapp``.

    With ``admin`` (the default) the admin API and dashboard are mounted at
    ``admin/`` (see :func:`lucent_ws.admin.create_admin_app`; without
    ``admin_token`` one is generated and printed at startup).
    Each call returns a fresh app (a frozen app cannot be mounted twice).
    """
    app = web.Application()
    setup(
        app,
        path=path,
        manager=manager,
        heartbeat=heartbeat,
        on_join_room=on_join_room,
        authenticate=authenticate,
        require_auth=require_auth,
        allowed_origins=allowed_origins,
        limits=limits,
    )
    if admin:
        mount_admin(app, app[MANAGER_KEY], token=admin_token)
    return app


def mount_admin(
    app: web.Application, manager: WebSocketManager, *, token: str | None = None
) -> web.Application:
    """Mount the admin API and dashboard on ``app`` at ``/admin/``; returns the sub-app.

    ``/admin`` without the slash redirects to it.
    """
    from .admin import create_admin_app

    admin_app = create_admin_app(manager, token=token)
    app.router.add_get("/admin", _to_admin, name="lucent_ws_admin_redirect")
    app.add_subapp("/admin/", admin_app)
    return admin_app


async def _to_admin(request: web.Request) -> web.StreamResponse:
    # Relative, so it also works when the hub is itself mounted under a prefix.
    raise web.HTTPPermanentRedirect(location="admin/")


async def drain(app: web.Application) -> None:
    """Refuse new handshakes (503) and close every connection with 1001, in parallel.

    Each socket gets the manager's ``close_timeout``; stuck ones are aborted.
    Runs by itself on app shutdown; call it earlier to drain before stopping.
    """
    app[STATE_KEY].draining = True
    await app[MANAGER_KEY].close_all(CloseCode.GOING_AWAY, "Server shutting down")


async def _stop_heartbeat(app: web.Application) -> None:
    app[MANAGER_KEY].stop_heartbeat()
