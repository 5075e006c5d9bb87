"""An aiohttp access logger that never records query strings or raw control characters.

Query strings may carry credentials (``/ws?token=...``). The path is logged as
the client sent it, still percent-encoded, so ``%0a`` cannot start a forged log
line and ``%1b`` cannot send escape sequences to a terminal; any byte outside
printable ASCII left in it is escaped as well. Use it when embedding:
``web.run_app(app, access_log_class=lucent_ws.SafeAccessLogger)``.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["SafeAccessLogger", "loggable_path"]

_UNSAFE = re.compile(r'[^\x21-\x7e]|["\\]')


def loggable_path(raw_path: str) -> str:
    """The request path without its query, as sent, with anything unprintable escaped."""
    path = raw_path.split("?", 1)[0]
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), path)


class SafeAccessLogger(AbstractAccessLogger):
    """Access log lines as ``remote "METHOD /path" status seconds``, without the query;
    the path stays percent-encoded (see :func:`loggable_path`)."""

    @property
    def enabled(self) -> bool:
        """Whether lines would be recorded: aiohttp skips formatting them otherwise."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one request."""
        self.logger.info(
            '%s "%s %s" %s %.3fs',
            request.remote,
            request.method,
            loggable_path(request.raw_path),
            response.status,
            time,
        )
