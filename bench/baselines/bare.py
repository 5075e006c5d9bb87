"""Bare aiohttp: a WebSocket endpoint that greets and reads, and a JSON POST handler.

The floor for memory per idle connection and for HTTP requests per second.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from bench.baselines.serve import serve


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Greet like the hub, then read until the peer leaves."""
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    await ws.send_str(json.dumps({"type": "connected", "id": str(uuid.uuid4())}))
    async for _ in ws:
        pass
    return ws


async def admin_broadcast(request: web.Request) -> web.Response:
    """Read the JSON body and answer the same JSON shape as the hub."""
    await request.json()
    return web.json_response({"delivered": 0})


def make_app() -> web.Application:
    """The bare application."""
    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_post("/admin/broadcast", admin_broadcast)
    return app


if __name__ == "__main__":
    serve(make_app(), __doc__ or "")
