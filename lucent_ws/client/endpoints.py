"""Where the client connects: one hub URL, several (failover), or a callback.

Each connection attempt asks for the next URL: with a list, an attempt after a
failure or a lost connection goes to the next node in turn, so a client whose
node died moves to another one; a callback is asked before every attempt.
``v=2`` is added to every URL.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from yarl import URL

from ..errors import ConfigurationError

__all__ = ["Endpoints", "UrlSource"]

UrlSource = str | Sequence[str] | Callable[[], "str | Awaitable[str]"]
"""A hub URL, a list of the cluster's URLs, or ``url()`` (sync or async) asked per attempt."""


def v2(url: str) -> str:
    """``url`` with ``v=2`` in its query."""
    return str(URL(url).update_query(v="2"))


class Endpoints:
    """The URLs to try, in turn."""

    def __init__(self, source: UrlSource) -> None:
        self._callback: Callable[[], str | Awaitable[str]] | None = None
        if isinstance(source, str):
            self.urls: tuple[str, ...] = (v2(source),)
        elif callable(source):
            self._callback = source
            self.urls = ()
        else:
            self.urls = tuple(v2(url) for url in source)
            if not self.urls:
                raise ConfigurationError("the client needs at least one URL")
        self._next = 0
        self.current: str | None = self.urls[0] if self.urls else None
        """The URL of the current (or last) attempt."""

    async def next(self) -> str:
        """The URL of the next attempt (the current one stays until :meth:`rotate`)."""
        if self._callback is not None:
            url = self._callback()
            self.current = v2(await url if inspect.isawaitable(url) else url)
            return self.current
        self.current = self.urls[self._next % len(self.urls)]
        return self.current

    def rotate(self) -> None:
        """The attempt failed or its connection was lost: the next one tries another URL."""
        self._next += 1
