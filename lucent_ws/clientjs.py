"""Server side of the official clients: ``{path}/client.js`` and the drain hint.

The JavaScript client (``lucent_ws/client/lucent-ws.js``) is served as it is in
the package, with a strong ``ETag`` and ``Cache-Control: public, no-cache``:
browsers keep it and revalidate it (304) instead of downloading it again.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Final

from aiohttp import web

from . import replies
from .manager import WebSocketManager

__all__ = ["CLIENT_JS", "announce_reconnect", "client_js", "client_js_source"]

CLIENT_JS: Final = "lucent-ws.js"


@cache
def client_js_source() -> tuple[bytes, str]:
    """The packaged ``lucent-ws.js`` and its ETag."""
    body = resources.files("lucent_ws.client").joinpath(CLIENT_JS).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


async def client_js(request: web.Request) -> web.Response:
    """Serve the JavaScript client; 304 when the browser's copy is current."""
    body, etag = client_js_source()
    headers = {"ETag": etag, "Cache-Control": "public, no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers, content_type="text/javascript", charset="utf-8")


def announce_reconnect(manager: WebSocketManager, within: float) -> int:
    """Tell every v2 connection ``{"type":"reconnect","within":S}``; how many were told.

    Sent just before a shutdown's 1001 so the official clients spread their
    first reconnect attempt over ``within`` seconds instead of all at once.
    """
    return manager.deliver_to_v2(replies.encode_reconnect(within))
