"""What the command line asks for, checked and resolved once: :class:`Settings`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .admin.auth import generate_token
from .config import DEFAULT_RECONNECT_WITHIN, HeartbeatConfig, Limits
from .errors import ConfigurationError
from .hosts import LOOPBACK_HOSTS, is_loopback
from .policy import Policies
from .streams import DEFAULT_HISTORY_MAX_BYTES, DEFAULT_RECOVER_MAX

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line, the environment and the config file ask for."""

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
    backlog: int = 2048
    """Connections the kernel queues before they are accepted (``listen()``)."""
    history_max_bytes: int = DEFAULT_HISTORY_MAX_BYTES
    """The node-wide byte cap of the rooms' histories."""
    recover_max: int = DEFAULT_RECOVER_MAX
    """Missed messages a rejoin with ``since`` may replay."""
    reuse_port: bool = False
    """Listen with SO_REUSEPORT; a drain first stops listening (the fresh process takes over)."""
    reconnect_within: float = DEFAULT_RECONNECT_WITHIN
    """The drain hint: v2 clients spread their reconnects over this many seconds (0: none)."""
    policies: Policies = field(default_factory=Policies)
    """The room policies of the config file's ``[[rooms]]`` tables."""
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
        if ns.backlog <= 0:
            raise ConfigurationError("--backlog must be positive")
        if ns.reconnect_within < 0:
            raise ConfigurationError("--reconnect-within must not be negative")
        if ns.history_max_bytes <= 0 or ns.recover_max < 0:
            raise ConfigurationError(
                "--history-max-bytes must be positive and --recover-max not negative"
            )
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
            backlog=ns.backlog,
            history_max_bytes=ns.history_max_bytes,
            recover_max=ns.recover_max,
            reconnect_within=ns.reconnect_within,
            reuse_port=ns.reuse_port,
            policies=getattr(ns, "policies", None) or Policies(),
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
