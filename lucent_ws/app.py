"""aiohttp integration: a ready app (:func:`create_app`) or an endpoint in yours (:func:`setup`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Unpack

from aiohttp import web

from .clientjs import announce_reconnect, client_js
from .codes import CloseCode
from .config import DEFAULT_RECONNECT_WITHIN
from .endpoint import EndpointOptions, build_endpoint
from .errors import ConfigurationError
from .handler import WebSocketHandler
from .keys import HANDLER_KEY, MANAGER_KEY, STATE_KEY
from .manager import WebSocketManager

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["create_app", "drain", "mount_admin", "setup"]


def setup(
    app: web.Application,
    *,
    path: str = "/ws",
    broker: Cluster | None = None,
    reconnect_within: float = DEFAULT_RECONNECT_WITHIN,
    **options: Unpack[EndpointOptions],
) -> WebSocketHandler:
    """Add the WebSocket endpoint to an existing app, like the original plugin.

    Takes the :class:`~lucent_ws.endpoint.EndpointOptions` (``manager``,
    ``heartbeat``, ``on_join_room``, ``authenticate``, ``require_auth``,
    ``allowed_origins``, ``limits``). Stores the manager, handler and shutdown
    state under the keys of :mod:`lucent_ws.keys`; at shutdown it closes every
    connection with 1001 and at cleanup stops the manager's heartbeat (the
    manager owns its timing: see ``heartbeat`` in the options). With a ``broker``
    (scale-out, see :mod:`lucent_ws.broker`) the app starts it at startup and
    stops it at cleanup. Also serves the JavaScript client at ``{path}/client.js``;
    at shutdown v2 clients first get ``{"type":"reconnect","within":S}``
    (``reconnect_within`` seconds, 0: no hint). Returns the handler.
    """
    handler = build_endpoint(**options)
    handler.state.reconnect_within = reconnect_within
    app[MANAGER_KEY] = handler.manager
    app[HANDLER_KEY] = handler
    app[STATE_KEY] = handler.state
    app.router.add_get(path, handler.handle, name="lucent_ws")
    app.router.add_get(path.rstrip("/") + "/client.js", client_js, name="lucent_ws_client_js")
    app.on_shutdown.append(drain)
    app.on_cleanup.append(_stop_heartbeat)
    if broker is not None:
        app.cleanup_ctx.append(_broker_context(broker))
    return handler


def create_app(
    path: str = "/ws",
    *,
    admin: bool = True,
    admin_token: str | None = None,
    redis_url: str | None = None,
    redis_prefix: str = "lucent_ws",
    lease: float = 15.0,
    broker: Cluster | None = None,
    trust_proxy: bool = False,
    reconnect_within: float = DEFAULT_RECONNECT_WITHIN,
    **options: Unpack[EndpointOptions],
) -> web.Application:
    """A new aiohttp app serving the hub; run it or mount it with ``add_subapp``.

    Takes the :class:`~lucent_ws.endpoint.EndpointOptions` like :func:`setup`.
    With ``admin`` (the default) the admin API and dashboard are mounted at
    ``admin/`` (see :func:`lucent_ws.admin.create_admin_app`; without
    ``admin_token`` one is generated and printed at startup).
    With ``redis_url`` the hub scales out over Redis (the ``redis`` extra):
    ``redis_prefix`` namespaces its keys, ``lease`` (seconds) bounds how long
    a dead node stays in the cluster's membership; or pass any ``broker``.
    ``allowed_hosts`` applies to the admin part too; ``trust_proxy`` makes it
    honour ``X-Forwarded-Proto`` and ``X-Forwarded-For`` from a proxy in front.
    Each call returns a fresh app (a frozen app cannot be mounted twice).
    """
    if broker is None and redis_url is not None:
        try:
            from .broker.redis import RedisBroker
        except ImportError as exc:
            raise ConfigurationError(
                f"redis_url needs the 'redis' extra (pip install 'lucent_ws[redis]'): {exc}"
            ) from None
        broker = RedisBroker(redis_url, prefix=redis_prefix, lease=lease)
    app = web.Application()
    setup(app, path=path, broker=broker, reconnect_within=reconnect_within, **options)
    if admin:
        mount_admin(
            app,
            app[MANAGER_KEY],
            token=admin_token,
            allowed_hosts=options.get("allowed_hosts", ()),
            trust_proxy=trust_proxy,
        )
    return app


def mount_admin(
    app: web.Application,
    manager: WebSocketManager,
    *,
    token: str | None = None,
    allowed_hosts: Iterable[str] = (),
    trust_proxy: bool = False,
) -> web.Application:
    """Mount the admin API and dashboard on ``app`` at ``/admin/``; returns the sub-app.

    ``/admin`` without the slash redirects to it. The keywords are those of
    :func:`lucent_ws.admin.create_admin_app`.
    """
    from .admin import create_admin_app

    admin_app = create_admin_app(
        manager, token=token, allowed_hosts=allowed_hosts, trust_proxy=trust_proxy
    )
    app.router.add_get("/admin", _to_admin, name="lucent_ws_admin_redirect")
    app.add_subapp("/admin/", admin_app)
    return admin_app


async def _to_admin(request: web.Request) -> web.StreamResponse:
    # Relative, so it also works when the hub is itself mounted under a prefix.
    raise web.HTTPPermanentRedirect(location="admin/")


async def drain(app: web.Application) -> None:
    """Refuse new handshakes (503) and close every connection with 1001, in parallel.

    Each socket gets the manager's ``close_timeout``; stuck ones are aborted.
    v2 connections first get the drain hint ``{"type":"reconnect","within":S}``.
    Runs by itself on app shutdown; call it earlier to drain before stopping.
    """
    state = app[STATE_KEY]
    state.draining = True
    if state.reconnect_within > 0:
        announce_reconnect(app[MANAGER_KEY], state.reconnect_within)
    await app[MANAGER_KEY].close_all(CloseCode.GOING_AWAY, "Server shutting down")


async def _stop_heartbeat(app: web.Application) -> None:
    app[MANAGER_KEY].stop_heartbeat()


def _broker_context(
    broker: Cluster,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run_broker(app: web.Application) -> AsyncIterator[None]:
        await broker.start(app[MANAGER_KEY])
        yield
        await broker.stop()

    return run_broker
