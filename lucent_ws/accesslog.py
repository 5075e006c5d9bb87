"""An aiohttp access logger that never records query strings.

Query strings may carry credentials (``/ws?token=...``). Use it when embedding:
``web.run_app(app, access_log_class=lucent_ws.SafeAccessLogger)``.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["SafeAccessLogger"]


class SafeAccessLogger(AbstractAccessLogger):
    """Access log lines as ``remote "METHOD /path" status seconds``, without the query."""

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
            request.path,
            response.status,
            time,
        )
