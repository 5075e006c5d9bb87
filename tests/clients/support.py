"""Helpers for the official clients' tests: an in-process hub on a real port, KS statistic."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits

KS_ALPHA_0001 = 1.949
"""Kolmogorov-Smirnov critical value coefficient at alpha = 0.001: D > 1.949 / sqrt(n) rejects.

(A true uniform sample fails one run in a thousand.)"""


def ks_uniform(samples: Sequence[float]) -> float:
    """The Kolmogorov-Smirnov statistic D of samples in [0, 1] against uniform(0, 1)."""
    xs = sorted(samples)
    n = len(xs)
    return max(max((i + 1) / n - x, x - i / n) for i, x in enumerate(xs))


def ks_critical(n: int) -> float:
    return KS_ALPHA_0001 / math.sqrt(n)


@asynccontextmanager
async def local_hub(
    manager: WebSocketManager,
    *,
    extra: Callable[[web.Application], None] | None = None,
    **kwargs: Any,
) -> AsyncIterator[str]:
    """``create_app(manager=...)`` served on 127.0.0.1; yields its ws:// URL.

    ``extra(app)`` may add routes before it starts.
    """
    kwargs.setdefault("limits", Limits(rate_limit=0))
    app = create_app(manager=manager, admin=False, **kwargs)
    if extra is not None:
        extra(app)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        await runner.cleanup()
