"""Slowing down admin token guessing: failed attempts are counted per client address.

After ``max_failures`` wrong tokens (login form or ``Authorization`` header)
from one address within ``window`` seconds, that address gets 429 with
``Retry-After`` for every admin request that presents a token, right or wrong,
until its oldest failure is ``window`` seconds old: a guess can no longer be
told from a refusal. Memory is bounded: the least recently seen addresses are
forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from aiohttp import web

__all__ = ["LoginThrottle", "client_address", "forwarded_proto"]


class LoginThrottle:
    """Failed admin logins per client address, in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 if it may now."""
        failures = self._failures.get(client)
        if failures is None:
            return 0
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return 0
        if len(failures) < self.max_failures:
            return 0
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        failures = self._failures.pop(client, None)
        if failures is None:
            failures = deque(maxlen=self.max_failures)
        failures.append(self._clock())
        self._failures[client] = failures
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures (a right token)."""
        self._failures.pop(client, None)


def client_address(request: web.BaseRequest, trust_proxy: bool) -> str:
    """The client's address; behind a trusted proxy, the last ``X-Forwarded-For`` hop."""
    if trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"


def forwarded_proto(request: web.BaseRequest, trust_proxy: bool) -> str:
    """``https`` or ``http`` as the browser sees it: ``X-Forwarded-Proto`` behind a proxy."""
    if trust_proxy:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in {"http", "https"}:
            return proto
    return "https" if request.secure else "http"
