"""The application hooks a host registers, and how the hub calls them (pure).

Every hook may be a plain function or a coroutine function. The endpoint
options carry the connection hooks (``on_connect``, ``on_disconnect``,
``on_join_room``, ``on_leave_room``, ``on_publish``); application message types
are registered on the manager with :meth:`~lucent_ws.WebSocketManager.message`.
A hook that raises is logged with its traceback and answered with
``internal_error``; the connection's other traffic and everyone else's go on.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .connection import Connection
from .errors import ConfigurationError
from .protocol import MESSAGE_TYPES

__all__ = [
    "ConnectHook",
    "DisconnectHook",
    "Hooks",
    "JoinHook",
    "LeaveHook",
    "MessageHandler",
    "MessageTypes",
    "PublishHook",
    "call",
]

T = TypeVar("T")

ConnectHook = Callable[[Connection], object]
"""``on_connect(conn)``, after the ``connected`` message is queued."""
DisconnectHook = Callable[[Connection, int], object]
"""``on_disconnect(conn, code)``, once the connection is gone (``code``: the close code)."""
JoinHook = Callable[[str, Connection], bool | Awaitable[bool]]
"""``on_join_room(room, conn)``: return (or resolve to) True to allow the join."""
LeaveHook = Callable[[str, Connection], object]
"""``on_leave_room(room, conn)``, after a client's ``leave`` took it out of the room."""
PublishHook = Callable[[str, Connection, Any], Any]
"""``on_publish(room, conn, payload)``: the payload to send (maybe changed), or raise
:class:`~lucent_ws.errors.Forbidden`."""
MessageHandler = Callable[[Connection, dict[str, Any]], Any]
"""A handler of an application message type: ``(conn, msg)``; what it returns (when
not None, or when the message has a ``ref``) goes back as ``reply``."""


@dataclass(frozen=True, slots=True)
class Hooks:
    """The connection hooks of one endpoint (each None when not set)."""

    on_connect: ConnectHook | None = None
    on_disconnect: DisconnectHook | None = None
    on_join_room: JoinHook | None = None
    on_leave_room: LeaveHook | None = None
    on_publish: PublishHook | None = None


class MessageTypes(dict[str, MessageHandler]):
    """The application message types of a manager: type -> handler."""

    def register(self, kind: str) -> Callable[[MessageHandler], MessageHandler]:
        """Decorator registering a handler for ``kind``; built-in types cannot be taken."""
        if kind in MESSAGE_TYPES:
            raise ConfigurationError(f"{kind!r} is a built-in message type")

        def register(handler: MessageHandler) -> MessageHandler:
            self[kind] = handler
            return handler

        return register


async def call(hook: Callable[..., T | Awaitable[T]], *args: Any) -> T:
    """Call a sync or async hook and return its result."""
    result = hook(*args)
    if inspect.isawaitable(result):
        return await result
    return result
