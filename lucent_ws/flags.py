"""The command line's flags: their declaration, ``LUCENT_WS_*`` variables and ``--config``.

Every flag can also be set with an environment variable ``LUCENT_WS_<FLAG>``
(``--max-rooms`` -> ``LUCENT_WS_MAX_ROOMS``) and in the TOML file of
``--config`` (``max_rooms = 20``; see :mod:`lucent_ws.configfile`). The command
line wins over the environment, the environment over the file, the file over
the defaults.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from .config import DEFAULT_RECONNECT_WITHIN, HeartbeatConfig, Limits
from .configfile import ConfigFile, load_config
from .errors import ConfigurationError
from .streams import DEFAULT_HISTORY_MAX_BYTES, DEFAULT_RECOVER_MAX
from .version import __version__

__all__ = ["ENV_PREFIX", "build_parser", "env_name", "parse_args"]

ENV_PREFIX = "LUCENT_WS_"
T = TypeVar("T")

_LOOPS = ("asyncio", "uvloop")


def env_name(flag: str) -> str:
    """The environment variable of a flag: ``--max-rooms`` -> ``LUCENT_WS_MAX_ROOMS``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _usage_error(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)  # a usage error, like argparse's


def _env_default(flag: str, convert: Callable[[str], T], default: T) -> T:
    raw = os.environ.get(env_name(flag))
    if raw is None or raw == "":
        return default
    try:
        return convert(raw)
    except ValueError:
        _usage_error(f"{env_name(flag)}={raw!r} is not valid for {flag}")


def _flag_on(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _split(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


class _CommandLineSecret(argparse._StoreAction):
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


def build_parser(file_values: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The parser; each default is the environment's value, else ``file_values``' (by
    ``dest``), else the built-in one."""
    from_file = file_values or {}
    limits = Limits()
    heartbeat = HeartbeatConfig()
    parser = argparse.ArgumentParser(
        prog="lucent-ws",
        description="Run the lucent_ws realtime hub. Each flag also reads LUCENT_WS_<FLAG> "
        "and the file of --config.",
        epilog="client commands: 'lucent-ws listen URL ROOM...' prints the rooms' messages "
        "as JSON lines; 'lucent-ws publish URL ROOM JSON' publishes one payload "
        "(see 'lucent-ws listen --help', 'lucent-ws publish --help').",
    )

    def default(flag: str, convert: Callable[[str], Any], builtin: Any) -> Any:
        dest = flag.lstrip("-").replace("-", "_")
        return _env_default(flag, convert, from_file.get(dest, builtin))

    def add(
        flag: str,
        convert: Callable[[str], Any],
        builtin: Any,
        help_text: str,
        *,
        secret: bool = False,
    ) -> None:
        # A secret's value may come from the environment: --help must not print it.
        shown = "" if secret else "; default: %(default)s"
        parser.add_argument(
            flag,
            type=convert,
            default=default(flag, convert, builtin),
            help=f"{help_text} (env {env_name(flag)}{shown})",
        )

    def switch(flag: str, help_text: str) -> None:
        parser.add_argument(
            flag,
            action="store_true",
            default=default(flag, _flag_on, False),
            help=f"{help_text} (env {env_name(flag)}=1)",
        )

    add("--config", str, None, "read flags and [[rooms]] policies from this TOML file")
    add("--host", str, "127.0.0.1", "interface to listen on")
    add("--port", int, 8080, "port to listen on")
    add("--path", str, "/ws", "WebSocket endpoint path")
    add(
        "--backlog",
        int,
        2048,
        "connections the kernel queues before they are accepted; capped by net.core.somaxconn",
    )
    parser.add_argument(
        "--admin-token",
        action=_CommandLineSecret,
        default=default("--admin-token", str, None),
        help="admin API token; generated and printed when unset. Every local user can "
        "read it in the process list: prefer --admin-token-file or the variable "
        "(env LUCENT_WS_ADMIN_TOKEN)",
    )
    add("--admin-token-file", str, None, "read the admin API token from this file")
    add("--admin-host", str, "127.0.0.1", "interface of the separate admin listener")
    add("--admin-port", int, None, "serve the admin API and dashboard on this port only")
    add("--heartbeat-interval", float, heartbeat.interval, "seconds between heartbeat pings")
    add("--heartbeat-timeout", float, heartbeat.timeout, "seconds a client has to answer")
    switch("--no-heartbeat", "disable the heartbeat")
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
    switch("--trust-proxy", "honour X-Forwarded-Proto and X-Forwarded-For from a proxy in front")
    add("--max-message-size", int, limits.max_message_size, "largest inbound message, bytes")
    add("--max-rooms", int, limits.max_rooms, "rooms per connection")
    add("--rate-limit", float, limits.rate_limit, "inbound messages/s per connection, 0: off")
    add("--rate-burst", int, limits.rate_burst, "inbound burst per connection")
    add("--max-outbound-buffer", int, limits.max_outbound_buffer, "outbound bytes per peer")
    add("--max-connections", int, limits.max_connections, "connections at once")
    add("--history-max-bytes", int, DEFAULT_HISTORY_MAX_BYTES, "history bytes kept, all rooms")
    add("--recover-max", int, DEFAULT_RECOVER_MAX, "missed messages a rejoin may replay")
    add("--redis-url", str, None, "share rooms with other nodes through this Redis", secret=True)
    add("--redis-prefix", str, "lucent_ws", "Redis key prefix, so apps can share one Redis")
    add("--lease", float, 15.0, "seconds a dead node stays in the cluster's membership")
    add("--close-timeout", float, 2.0, "seconds a close may take before the socket is aborted")
    add(
        "--reconnect-within",
        float,
        DEFAULT_RECONNECT_WITHIN,
        "at shutdown, v2 clients spread their reconnects over this many seconds; 0: no hint",
    )
    add("--header-timeout", float, 5.0, "seconds a new socket has to send its request header")
    add("--max-pending", int, 1024, "sockets not yet upgraded; past it the oldest is closed")
    switch(
        "--reuse-port",
        "share the port with a fresh process (SO_REUSEPORT) and stop listening when a "
        "drain starts, so a restart refuses no handshake",
    )
    add("--loop", str, "asyncio", "event loop: asyncio or uvloop")
    add("--log-level", str, "info", "logging level")
    parser.add_argument("--version", action="version", version=f"lucent_ws {__version__}")
    return parser


def _listed(dest: str, flag: str, from_file: Mapping[str, Any]) -> list[str]:
    """A repeatable flag not given on the command line: the variable's list, else the file's."""
    raw = os.environ.get(env_name(flag), "")
    if raw:
        return _split(raw)
    return list(from_file.get(dest, []))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line over the environment over the ``--config`` file.

    The namespace also holds ``policies``, the file's room policies. A bad
    environment value or a bad file prints one line and exits with 2.
    """
    ns = build_parser().parse_args(argv)
    config = ConfigFile()
    if ns.config:
        try:
            config = load_config(ns.config, build_parser())
        except ConfigurationError as exc:
            _usage_error(str(exc))
        ns = build_parser(config.values).parse_args(argv)
    ns.policies = config.policies
    if ns.allowed_origins is None:
        ns.allowed_origins = _listed("allowed_origins", "--allowed-origins", config.values)
    if ns.allowed_hosts is None:
        ns.allowed_hosts = _listed("allowed_hosts", "--allowed-hosts", config.values)
    if ns.loop not in _LOOPS:
        _usage_error(f"--loop (config key 'loop'): {ns.loop!r} is not asyncio or uvloop")
    if not isinstance(logging.getLevelName(ns.log_level.upper()), int):
        _usage_error(
            f"--log-level (config key 'log_level'): {ns.log_level!r} is not a logging level "
            "(debug, info, warning, error, critical)"
        )
    return ns
