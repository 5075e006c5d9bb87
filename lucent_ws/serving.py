"""Running the hub the command line describes: listeners, the startup lines, the drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal

from aiohttp import web

from .accesslog import SafeAccessLogger
from .admin.auth import announce_generated_token
from .app import drain, mount_admin
from .keys import MANAGER_KEY
from .pending import GuardedSite
from .settings import Settings
from .version import __version__

__all__ = ["raise_fd_limit", "serve"]

logger = logging.getLogger("lucent_ws")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(settings: Settings) -> None:
    """Print where the hub listens; a generated admin token is announced here, once."""
    host = _url_host(settings.host)
    print(
        f"lucent_ws {__version__} listening on ws://{host}:{settings.port}{settings.path}",
        flush=True,
    )
    if settings.admin_port is None:
        dashboard = f"http://{host}:{settings.port}/admin/"
    else:
        dashboard = f"http://{_url_host(settings.admin_host)}:{settings.admin_port}/admin/"
    if settings.admin_token_generated:
        announce_generated_token(dashboard, settings.admin_token)
    else:
        print(f"admin dashboard: {dashboard} (sign in with the configured admin token)", flush=True)


async def _start_admin_site(app: web.Application, settings: Settings) -> web.AppRunner:
    """The separate admin listener of ``--admin-port``, sharing the hub's manager."""
    assert settings.admin_port is not None
    admin_app = web.Application()
    mount_admin(
        admin_app,
        app[MANAGER_KEY],
        token=settings.admin_token,
        allowed_hosts=settings.admin_allowed_hosts,
        trust_proxy=settings.trust_proxy,
    )
    runner = web.AppRunner(
        admin_app, handle_signals=False, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
    )
    await runner.setup()
    await _site(runner, settings, settings.admin_host, settings.admin_port).start()
    return runner


def _site(runner: web.AppRunner, settings: Settings, host: str, port: int) -> GuardedSite:
    return GuardedSite(
        runner,
        host,
        port,
        header_timeout=settings.header_timeout,
        max_pending=_pending_cap(settings.max_pending),
        backlog=settings.backlog,
        reuse_port=settings.reuse_port,
    )


def _pending_cap(configured: int) -> int:
    """``--max-pending``, but never more than half the descriptors the process may open:
    sockets that have not upgraded must not be able to starve the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    cap = max(16, soft // 2)
    if configured > cap:
        logger.info("--max-pending %d lowered to %d: half the descriptor limit", configured, cap)
        return cap
    return configured


def raise_fd_limit() -> None:
    """Raise the soft descriptor limit to the hard one: every connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(app: web.Application, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then drain: 503 to new handshakes (with ``reuse_port``:
    stop listening first), 1001 to everyone."""
    runner = web.AppRunner(
        app, handle_signals=False, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
    )
    await runner.setup()
    site = _site(runner, settings, settings.host, settings.port)
    await site.start()
    admin_runner = (
        await _start_admin_site(app, settings) if settings.admin_port is not None else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _announce(settings)
    try:
        await stop.wait()
        logger.info("shutting down: draining connections")
        if settings.reuse_port:
            # A fresh process shares the port: from now on every new connection is its.
            await site.stop()
        await drain(app)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if admin_runner is not None:
            await admin_runner.cleanup()
        await runner.cleanup()
    logger.info("stopped")
