"""Command line: ``python run.py``, ``python -m lucent_ws`` and ``lucent-ws`` share :func:`main`.

Every flag can also be set with an environment variable ``LUCENT_WS_<FLAG>``
(``--max-rooms`` -> ``LUCENT_WS_MAX_ROOMS``); the command line wins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from .accesslog import SafeAccessLogger
from .admin.auth import generate_token
from .app import create_app, drain, mount_admin
from .config import HeartbeatConfig, Limits
from .errors import ConfigurationError
from .keys import MANAGER_KEY
from .manager import WebSocketManager
from .version import __version__

__all__ = ["build_app", "main", "parse_args"]

logger = logging.getLogger("lucent_ws")
ENV_PREFIX = "LUCENT_WS_"
T = TypeVar("T")


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _env_default(flag: str, convert: Callable[[str], T], default: T) -> T:
    raw = os.environ.get(_env_name(flag))
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except ValueError:
        print(f"error: {_env_name(flag)}={raw!r} is not valid for {flag}", file=sys.stderr)
        raise SystemExit(2) from None  # a usage error, like argparse's


def _flag_on(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _split(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line over the ``LUCENT_WS_*`` environment."""
    limits = Limits()
    heartbeat = HeartbeatConfig()
    parser = argparse.ArgumentParser(
        prog="lucent-ws",
        description="Run the lucent_ws realtime hub. Each flag also reads LUCENT_WS_<FLAG>.",
    )

    def add(
        flag: str,
        convert: Callable[[str], Any],
        default: Any,
        help_text: str,
        *,
        secret: bool = False,
    ) -> None:
        # A secret's value may come from the environment: --help must not print it.
        shown = "" if secret else "; default: %(default)s"
        parser.add_argument(
            flag,
            type=convert,
            default=_env_default(flag, convert, default),
            help=f"{help_text} (env {_env_name(flag)}{shown})",
        )

    add("--host", str, "127.0.0.1", "interface to listen on")
    add("--port", int, 8080, "port to listen on")
    add("--path", str, "/ws", "WebSocket endpoint path")
    add(
        "--admin-token",
        str,
        None,
        "admin API token; generated and printed when unset",
        secret=True,
    )
    add("--admin-host", str, "127.0.0.1", "interface of the separate admin listener")
    add("--admin-port", int, None, "serve the admin API and dashboard on this port only")
    add("--heartbeat-interval", float, heartbeat.interval, "seconds between heartbeat pings")
    add("--heartbeat-timeout", float, heartbeat.timeout, "seconds a client has to answer")
    parser.add_argument(
        "--no-heartbeat",
        action="store_true",
        default=_env_default("--no-heartbeat", _flag_on, False),
        help="disable the heartbeat (env LUCENT_WS_NO_HEARTBEAT=1)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        default=None,
        metavar="ORIGIN",
        help="allowed Origin, repeatable; '*' for any; none: same host only "
        "(env LUCENT_WS_ALLOWED_ORIGINS, comma-separated)",
    )
    add("--max-message-size", int, limits.max_message_size, "largest inbound message, bytes")
    add("--max-rooms", int, limits.max_rooms, "rooms per connection")
    add("--rate-limit", float, limits.rate_limit, "inbound messages/s per connection, 0: off")
    add("--rate-burst", int, limits.rate_burst, "inbound burst per connection")
    add("--max-outbound-buffer", int, limits.max_outbound_buffer, "outbound bytes per peer")
    add("--max-connections", int, limits.max_connections, "connections at once")
    add(
        "--redis-url",
        str,
        None,
        "share rooms with other nodes through this Redis",
        secret=True,
    )
    add("--redis-prefix", str, "lucent_ws", "Redis key prefix, so apps can share one Redis")
    add("--lease", float, 15.0, "seconds a dead node stays in the cluster's membership")
    add("--close-timeout", float, 2.0, "seconds a close may take before the socket is aborted")
    add("--loop", str, "asyncio", "event loop: asyncio or uvloop")
    add("--log-level", str, "info", "logging level")
    parser.add_argument("--version", action="version", version=f"lucent_ws {__version__}")
    ns = parser.parse_args(argv)
    if ns.allowed_origins is None:
        ns.allowed_origins = _split(os.environ.get(ENV_PREFIX + "ALLOWED_ORIGINS", ""))
    if ns.loop not in {"asyncio", "uvloop"}:
        parser.error("--loop must be asyncio or uvloop")
    if not isinstance(logging.getLevelName(ns.log_level.upper()), int):
        parser.error(f"--log-level {ns.log_level!r} is not a logging level (debug, info, ...)")
    return ns


def build_app(ns: argparse.Namespace) -> web.Application:
    """The app the command line describes. Raises ConfigurationError for bad values."""
    heartbeat = (
        None
        if ns.no_heartbeat
        else HeartbeatConfig(interval=ns.heartbeat_interval, timeout=ns.heartbeat_timeout)
    )
    limits = Limits(
        max_message_size=ns.max_message_size,
        max_rooms=ns.max_rooms,
        rate_limit=ns.rate_limit,
        rate_burst=ns.rate_burst,
        max_outbound_buffer=ns.max_outbound_buffer,
        max_connections=ns.max_connections,
    )
    manager = WebSocketManager(heartbeat=heartbeat, close_timeout=ns.close_timeout)
    if ns.admin_token == "":
        raise ConfigurationError("--admin-token must not be empty")
    ns.admin_token_generated = ns.admin_token is None
    if ns.admin_token is None:
        ns.admin_token = generate_token()
    return create_app(
        ns.path,
        manager=manager,
        allowed_origins=ns.allowed_origins,
        limits=limits,
        admin=ns.admin_port is None,
        admin_token=ns.admin_token,
        redis_url=ns.redis_url or None,
        redis_prefix=ns.redis_prefix,
        lease=ns.lease,
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(ns: argparse.Namespace) -> None:
    """Print where the hub listens; a generated admin token is printed here, once."""
    host = _url_host(ns.host)
    print(f"lucent_ws {__version__} listening on ws://{host}:{ns.port}{ns.path}", flush=True)
    if ns.admin_port is None:
        dashboard = f"http://{host}:{ns.port}/admin/"
    else:
        dashboard = f"http://{_url_host(ns.admin_host)}:{ns.admin_port}/admin/"
    if getattr(ns, "admin_token_generated", False):
        # The one secret ever printed; in the URL's fragment it never reaches a server log.
        print(f"admin dashboard: {dashboard}#token={ns.admin_token}", flush=True)
        print(f"admin token (generated, shown once): {ns.admin_token}", flush=True)
    else:
        print(f"admin dashboard: {dashboard} (sign in with the configured admin token)", flush=True)


async def _start_admin_site(app: web.Application, ns: argparse.Namespace) -> web.AppRunner:
    """The separate admin listener of ``--admin-port``, sharing the hub's manager."""
    admin_app = web.Application()
    mount_admin(admin_app, app[MANAGER_KEY], token=ns.admin_token)
    runner = web.AppRunner(
        admin_app, handle_signals=False, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
    )
    await runner.setup()
    await web.TCPSite(runner, ns.admin_host, ns.admin_port).start()
    return runner


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(app: web.Application, ns: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT, then drain: 503 to new handshakes, 1001 to everyone."""
    runner = web.AppRunner(
        app, handle_signals=False, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, ns.host, ns.port)
    await site.start()
    admin_runner = await _start_admin_site(app, ns) if ns.admin_port is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _announce(ns)
    try:
        await stop.wait()
        logger.info("shutting down: draining connections")
        await drain(app)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if admin_runner is not None:
            await admin_runner.cleanup()
        await runner.cleanup()
    logger.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; returns the process exit code."""
    ns = parse_args(argv)
    logging.basicConfig(
        level=ns.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app = build_app(ns)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if ns.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("error: --loop uvloop needs the 'uvloop' extra", file=sys.stderr)
            return 2
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(app, ns))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
