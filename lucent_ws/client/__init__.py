"""The official Python client of the hub's protocol v2, on aiohttp.

::

    async with Client("ws://127.0.0.1:8080/ws", get_token=lambda: TOKEN) as client:
        room = await client.join("chat:1")
        await room.publish({"text": "hi"}, timeout=5)
        async for msg in room:
            print(msg.payload)

It reconnects with full-jitter backoff (to the next node, given several URLs),
re-joins every room from its last position (``since``) and drops messages
already delivered; see SPEC section 11.
The same behaviour in JavaScript: ``lucent-ws.js`` beside this file, served by
the hub at ``{path}/client.js``.
"""

from __future__ import annotations

from ..errors import (
    ClientError,
    ConnectionClosed,
    Disconnected,
    RequestFailed,
    RequestTimeout,
)
from .core import Client
from .endpoints import UrlSource
from .events import ClientEvent, TokenGetter
from .policy import Backoff
from .rooms import Room, Stream
from .state import Ack, Message, PresenceState, Recovery

__all__ = [
    "Ack",
    "Backoff",
    "Client",
    "ClientError",
    "ClientEvent",
    "ConnectionClosed",
    "Disconnected",
    "Message",
    "PresenceState",
    "Recovery",
    "RequestFailed",
    "RequestTimeout",
    "Room",
    "Stream",
    "TokenGetter",
    "UrlSource",
]
