"""The naive hub: the protocol subset the benchmarks use, one awaited send per recipient.

Each broadcast runs ``await ws.send_str(json.dumps(msg))`` for every member in turn,
the way a first implementation on aiohttp usually looks.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from bench.baselines.serve import serve

TOKEN = "bench-token"

rooms: dict[str, set[web.WebSocketResponse]] = {}
ids: dict[web.WebSocketResponse, str] = {}


async def fan_out(room: str, msg: Any, exclude: web.WebSocketResponse | None = None) -> int:
    """Send ``msg`` to each member of ``room`` but ``exclude``; return the count."""
    delivered = 0
    for peer in list(rooms.get(room, ())):
        if peer is exclude:
            continue
        try:
            await peer.send_str(json.dumps(msg))
        except ConnectionResetError:
            continue
        delivered += 1
    return delivered


async def handle(ws: web.WebSocketResponse, msg: dict[str, Any]) -> None:
    """Answer one client message."""
    kind, room, ref = msg.get("type"), msg.get("room"), msg.get("ref")
    if kind == "join" and isinstance(room, str):
        rooms.setdefault(room, set()).add(ws)
        await ws.send_str(json.dumps({"type": "joined", "room": room}))
    elif kind == "leave" and isinstance(room, str):
        rooms.get(room, set()).discard(ws)
        await ws.send_str(json.dumps({"type": "left", "room": room}))
    elif kind == "broadcast" and isinstance(room, str):
        out = {"type": "message", "room": room, "from": ids[ws], "payload": msg.get("payload")}
        delivered = await fan_out(room, out, exclude=ws)
        if ref is not None:
            await ws.send_str(json.dumps({"type": "ack", "ref": ref, "delivered": delivered}))
    elif kind == "ping":
        await ws.send_str(json.dumps({"type": "pong"}))


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """The WebSocket endpoint."""
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    ids[ws] = str(uuid.uuid4())
    await ws.send_str(json.dumps({"type": "connected", "id": ids[ws]}))
    try:
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                await handle(ws, json.loads(frame.data))
    finally:
        for members in rooms.values():
            members.discard(ws)
        del ids[ws]
    return ws


async def admin_broadcast(request: web.Request) -> web.Response:
    """``POST /admin/broadcast``: deliver the payload verbatim to a room."""
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        raise web.HTTPUnauthorized()
    body = await request.json()
    delivered = await fan_out(body["room"], body["payload"])
    return web.json_response({"delivered": delivered})


def make_app() -> web.Application:
    """The naive hub application."""
    app = web.Application()
    app.router.add_get("/ws", websocket)
    app.router.add_post("/admin/broadcast", admin_broadcast)
    return app


if __name__ == "__main__":
    serve(make_app(), __doc__ or "")
