"""Command line: ``python run.py``, ``python -m lucent_ws`` and ``lucent-ws`` share :func:`main`.

The flags, their ``LUCENT_WS_<FLAG>`` variables and the ``--config`` file are
declared in :mod:`lucent_ws.flags`, resolved into :class:`~lucent_ws.settings.Settings`,
and served by :mod:`lucent_ws.serving`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from aiohttp import web

from .app import create_app
from .client_cli import COMMANDS as CLIENT_COMMANDS
from .client_cli import main as client_main
from .errors import ConfigurationError
from .flags import parse_args
from .manager import WebSocketManager
from .serving import raise_fd_limit, serve
from .settings import Settings

__all__ = ["Settings", "build_app", "main", "parse_args"]

logger = logging.getLogger("lucent_ws")


def build_app(settings: Settings | argparse.Namespace) -> web.Application:
    """The app the command line describes. Raises ConfigurationError for bad values."""
    if isinstance(settings, argparse.Namespace):
        settings = Settings.from_args(settings)
    manager = WebSocketManager(
        heartbeat=settings.heartbeat,
        close_timeout=settings.close_timeout,
        policies=settings.policies,
        history_max_bytes=settings.history_max_bytes,
        recover_max=settings.recover_max,
    )
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
        reconnect_within=settings.reconnect_within,
    )


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
    raise_fd_limit()
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
