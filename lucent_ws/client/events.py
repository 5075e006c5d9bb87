"""What the client tells the application: :class:`ClientEvent` and its listeners."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["ClientEvent", "EventKind", "Listener", "Listeners", "TokenGetter"]

logger = logging.getLogger("lucent_ws.client")

TokenGetter = Callable[[], "str | Awaitable[str | None] | None"]
"""``get_token()``, sync or async: a bearer token, or None for none."""
EventKind = Literal["connecting", "connected", "disconnected", "recovered", "closed", "left"]


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A change of the client's state, given to every listener.

    - ``connecting``: an attempt starts after ``delay`` seconds (``attempt`` 0 first)
      to ``url``
    - ``connected``: ``id`` is the connection id, ``url`` the hub it reached
    - ``disconnected``: ``code`` is the close code (1006: no close frame) or HTTP status
    - ``recovered``: after a re-join with ``since``, or a ``resync`` from the server;
      ``recovered`` False means the missed messages are lost (refetch your state),
      with the server's ``reason``
    - ``left``: the server refused a re-join (``reason`` is the error code)
    - ``closed``: final; ``code`` says why (1000 after :meth:`Client.close`)
    """

    kind: EventKind
    code: int | None = None
    room: str | None = None
    recovered: bool | None = None
    missed: int | None = None
    reason: str | None = None
    delay: float | None = None
    attempt: int | None = None
    id: str | None = None
    url: str | None = None


Listener = Callable[[ClientEvent], object]


class Listeners:
    """The application's listeners; one that raises is logged and the others still run."""

    def __init__(self, first: Listener | None = None) -> None:
        self._listeners: list[Listener] = [first] if first else []

    def add(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: ClientEvent) -> None:
        """Give ``event`` to every listener."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("client event listener failed")
