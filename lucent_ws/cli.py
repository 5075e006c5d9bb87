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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from .accesslog import SafeAccessLogger
from .admin.auth import announce_generated_token, generate_token
from .app import create_app, drain, mount_admin
from .client_cli import COMMANDS as CLIENT_COMMANDS
from .client_cli import main as client_main
from .config import HeartbeatConfig, Limits
from .errors import ConfigurationError
from .hosts import LOOPBACK_HOSTS, is_loopback
from .keys import MANAGER_KEY
from .manager import WebSocketManager
from .pending import GuardedSite
from .version import __version__

__all__ = ["Settings", "build_app", "main", "parse_args"]

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


class _CommandLineSecret(argparse.Action):
    """Stores the value and notes that a secret came on the command line (``ps`` shows it)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, self.dest + "_on_command_line", True)


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
    parser.add_argument(
        "--admin-token",
        action=_CommandLineSecret,
        default=_env_default("--admin-token", str, None),
        help="admin API token; generated and printed when unset. Every local user can "
        "read it in the process list: prefer --admin-token-file or the variable "
        "(env LUCENT_WS_ADMIN_TOKEN)",
    )
    add("--admin-token-file", str, None, "read the admin API token from this file")
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
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        default=None,
        metavar="HOST",
        help="Host header to answer, repeatable; '*' for any, '.example.com' for a domain; "
        "none: bound to loopback, localhost, 127.0.0.1, [::1] and --host "
        "(env LUCENT_WS_ALLOWED_HOSTS, comma-separated)",
    )
    parser.add_argument(
        "--trust-proxy",
        action="store_true",
        default=_env_default("--trust-proxy", _flag_on, False),
        help="honour X-Forwarded-Proto and X-Forwarded-For from a proxy in front "
        "(env LUCENT_WS_TRUST_PROXY=1)",
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
    add("--header-timeout", float, 5.0, "seconds a new socket has to send its request header")
    add("--max-pending", int, 1024, "sockets not yet upgraded; past it the oldest is closed")
    add("--loop", str, "asyncio", "event loop: asyncio or uvloop")
    add("--log-level", str, "info", "logging level")
    parser.add_argument("--version", action="version", version=f"lucent_ws {__version__}")
    ns = parser.parse_args(argv)
    if ns.allowed_origins is None:
        ns.allowed_origins = _split(os.environ.get(ENV_PREFIX + "ALLOWED_ORIGINS", ""))
    if ns.allowed_hosts is None:
        ns.allowed_hosts = _split(os.environ.get(ENV_PREFIX + "ALLOWED_HOSTS", ""))
    if ns.loop not in {"asyncio", "uvloop"}:
        parser.error("--loop must be asyncio or uvloop")
    if not isinstance(logging.getLevelName(ns.log_level.upper()), int):
        parser.error(f"--log-level {ns.log_level!r} is not a logging level (debug, info, ...)")
    return ns


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line and the environment ask for, checked and resolved once."""

    host: str
    port: int
    path: str
    admin_token: str
    admin_token_generated: bool
    """True if no token was configured: this one was generated and is announced once."""
    admin_host: str
    admin_port: int | None
    heartbeat: HeartbeatConfig | None
    """The manager's heartbeat; None: off."""
    limits: Limits
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    admin_allowed_hosts: tuple[str, ...]
    trust_proxy: bool
    redis_url: str | None
    redis_prefix: str
    lease: float
    close_timeout: float
    header_timeout: float
    max_pending: int
    loop: str
    warnings: tuple[str, ...] = ()
    """Things to warn about once logging is set up."""

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> Settings:
        """Resolve parsed arguments; raises ConfigurationError for bad values."""
        warnings = []
        token, generated = _admin_token(ns)
        if getattr(ns, "admin_token_on_command_line", False):
            warnings.append(
                "--admin-token on the command line is readable by every local user "
                "(ps, /proc); use --admin-token-file or LUCENT_WS_ADMIN_TOKEN instead"
            )
        if ns.header_timeout <= 0 or ns.max_pending <= 0:
            raise ConfigurationError("--header-timeout and --max-pending must be positive")
        return cls(
            host=ns.host,
            port=ns.port,
            path=ns.path,
            admin_token=token,
            admin_token_generated=generated,
            admin_host=ns.admin_host,
            admin_port=ns.admin_port,
            heartbeat=(
                None
                if ns.no_heartbeat
                else HeartbeatConfig(interval=ns.heartbeat_interval, timeout=ns.heartbeat_timeout)
            ),
            limits=Limits(
                max_message_size=ns.max_message_size,
                max_rooms=ns.max_rooms,
                rate_limit=ns.rate_limit,
                rate_burst=ns.rate_burst,
                max_outbound_buffer=ns.max_outbound_buffer,
                max_connections=ns.max_connections,
            ),
            allowed_origins=tuple(ns.allowed_origins),
            allowed_hosts=_allowed_hosts(ns.allowed_hosts, ns.host),
            admin_allowed_hosts=_allowed_hosts(ns.allowed_hosts, ns.admin_host),
            trust_proxy=ns.trust_proxy,
            redis_url=ns.redis_url or None,
            redis_prefix=ns.redis_prefix,
            lease=ns.lease,
            close_timeout=ns.close_timeout,
            header_timeout=ns.header_timeout,
            max_pending=ns.max_pending,
            loop=ns.loop,
            warnings=tuple(warnings),
        )


def _admin_token(ns: argparse.Namespace) -> tuple[str, bool]:
    """The admin token from the flag, the variable or the file; else a generated one."""
    path = ns.admin_token_file
    if ns.admin_token is not None and path:
        raise ConfigurationError("give --admin-token or --admin-token-file, not both")
    token = ns.admin_token
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"--admin-token-file {path!r}: {exc}") from None
    if token == "":
        raise ConfigurationError("the admin token must not be empty")
    if token is None:
        return generate_token(), True
    return token, False


def _allowed_hosts(configured: Sequence[str], bound: str) -> tuple[str, ...]:
    """The Host allowlist: as configured, or the loopback names when bound to loopback.

    Bound to any other address, the hub itself checks requests that arrive on
    loopback (see :class:`lucent_ws.hosts.HostPolicy`).
    """
    if configured:
        return tuple(configured)
    if is_loopback(bound):
        return (*LOOPBACK_HOSTS, bound)
    return ()


def build_app(settings: Settings | argparse.Namespace) -> web.Application:
    """The app the command line describes. Raises ConfigurationError for bad values."""
    if isinstance(settings, argparse.Namespace):
        settings = Settings.from_args(settings)
    manager = WebSocketManager(heartbeat=settings.heartbeat, close_timeout=settings.close_timeout)
    return create_app(
        settings.path,
        manager=manager,
        allowed_origins=settings.allowed_origins,
        allowed_hosts=settings.allowed_hosts,
        limits=settings.limits,
        admin=settings.admin_port is None,
        admin_token=settings.admin_token,
        trust_proxy=settings.trust_proxy,
        redis_url=settings.redis_url,
        redis_prefix=settings.redis_prefix,
        lease=settings.lease,
    )


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


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(app: web.Application, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then drain: 503 to new handshakes, 1001 to everyone."""
    runner = web.AppRunner(
        app, handle_signals=False, access_log_class=SafeAccessLogger, shutdown_timeout=1.0
    )
    await runner.setup()
    await _site(runner, settings, settings.host, settings.port).start()
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
        await drain(app)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if admin_runner is not None:
            await admin_runner.cleanup()
        await runner.cleanup()
    logger.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server (or ``listen``/``publish``); returns the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in CLIENT_COMMANDS:  # lucent_ws/client_cli.py
        return client_main(args)
    ns = parse_args(argv)
    logging.basicConfig(
        level=ns.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_args(ns)
        app = build_app(settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in settings.warnings:
        logger.warning("%s", warning)
    _raise_fd_limit()
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if settings.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("error: --loop uvloop needs the 'uvloop' extra", file=sys.stderr)
            return 2
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(app, settings))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
