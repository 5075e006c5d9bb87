"""The admin app factory: API, OpenAPI document, metrics and dashboard in one sub-app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from aiohttp import web

from ..hosts import HostPolicy
from ..manager import WebSocketManager, ws_manager
from .auth import AdminAuth, announce_generated_token, generate_token
from .dashboard import dashboard, setup_templates
from .history import StatsHistory
from .keys import ADMIN_KEY, AdminState
from .metrics import make_registry
from .middleware import admin_middleware
from .views import INDEX_ROUTE, api

__all__ = ["create_admin_app"]


def create_admin_app(
    manager: WebSocketManager | None = None,
    *,
    token: str | None = None,
    top_rooms: int = 20,
    history_interval: float = 2.0,
    allowed_hosts: Iterable[str] = (),
    trust_proxy: bool = False,
) -> web.Application:
    """A new aiohttp app with the admin API and dashboard; mount it at ``/admin/``.

    ``manager`` defaults to :data:`lucent_ws.ws_manager`. Without ``token`` a
    random one is generated and printed once at startup (never logged).
    ``top_rooms`` bounds the rooms in stats and metrics; ``history_interval``
    is the dashboard chart's sampling period in seconds. ``allowed_hosts``
    is the Host check (see :class:`lucent_ws.hosts.HostPolicy`);
    ``trust_proxy`` honours ``X-Forwarded-Proto`` (the session cookie is
    ``Secure`` behind TLS) and ``X-Forwarded-For`` (login throttling).
    """
    if manager is None:
        manager = ws_manager
    generated = token is None
    routes = (*api.routes, *dashboard.routes)
    app = web.Application(middlewares=[admin_middleware])
    state = AdminState(
        manager=manager,
        auth=AdminAuth(generate_token() if token is None else token),
        registry=make_registry(manager, top_rooms=top_rooms),
        history=StatsHistory(manager, interval=history_interval),
        routes=routes,
        public_routes=frozenset(route.name for route in routes if route.public),
        hosts=HostPolicy(allowed_hosts),
        trust_proxy=trust_proxy,
        top_rooms=top_rooms,
    )
    app[ADMIN_KEY] = state
    setup_templates(app)
    api.add_to(app)
    dashboard.add_to(app)
    app.cleanup_ctx.append(_sample_history)
    if generated:
        app.on_startup.append(_announce_token(state.auth))
    return app


async def _sample_history(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[ADMIN_KEY].history.run(), name="lucent_ws admin history")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _announce_token(auth: AdminAuth) -> Callable[[web.Application], Awaitable[None]]:
    async def announce(app: web.Application) -> None:
        announce_generated_token(str(app.router[INDEX_ROUTE].url_for()), auth.reveal_token())

    return announce
