"""A scripted hub for the shared client cases: each connection plays one script of SPEC frames.

Steps of a connection script (``cases.json``):

- ``{"refuse": STATUS}``: answer the handshake with that HTTP status
- ``{"token": T}``: the bearer token the client presented (header or subprotocol) must be T
- ``{"hello": {"heartbeat": ...}}``: send ``connected`` (v2)
- ``{"recv": SUBSET}``: the next client frame (pongs skipped) must contain SUBSET;
  ``"$any"`` matches any value, ``"$absent"`` a missing key; its ``ref`` is remembered
- ``{"send": FRAME}``: send FRAME, with ``"$ref"`` replaced by the remembered ref
- ``{"close": CODE}``, ``{"drop": true}`` (abort, no close frame), ``{"sleep": S}``
- ``{"pings": {"every": S, "min": N}}``: a JSON ping every S seconds until the client
  closes, each answered by a pong, at least N of them
- at the end the connection is held (frames read and ignored) until the client closes.

A plain GET (the JavaScript client's probe after a failed handshake) gets the status
of the last refusal. Mismatches and connections beyond the scripts are recorded in
``failures``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from lucent_ws.auth import bearer_token


def matches(subset: Any, value: Any) -> bool:
    if subset == "$any":
        return True
    if isinstance(subset, dict):
        if not isinstance(value, dict):
            return False
        for key, want in subset.items():
            if want == "$absent":
                if key in value:
                    return False
            elif key not in value or not matches(want, value[key]):
                return False
        return True
    return bool(subset == value)


def substitute(frame: Any, ref: Any) -> Any:
    if frame == "$ref":
        return ref
    if isinstance(frame, dict):
        return {k: substitute(v, ref) for k, v in frame.items()}
    if isinstance(frame, list):
        return [substitute(v, ref) for v in frame]
    return frame


class FakeHub:
    def __init__(self, scripts: list[list[dict[str, Any]]]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.failures: list[str] = []
        self.last_status = 400
        self.app = web.Application()
        self.app.router.add_get("/ws", self.handle)

    def fail(self, text: str) -> None:
        self.failures.append(f"connection {self.connections}: {text}")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=self.last_status)
        index = self.connections
        self.connections += 1
        if index >= len(self.scripts):
            self.fail("a connection beyond the script")
            self.last_status = 503
            return web.Response(status=503)
        if request.query.get("v") != "2":
            self.fail(f"v={request.query.get('v')!r}, not 2")
        script = list(self.scripts[index])
        protocols = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        token = bearer_token(request.headers.get("Authorization"))
        if token is None and len(protocols) == 2 and protocols[0] == "bearer":
            token = protocols[1]
        while script and ("token" in script[0] or "refuse" in script[0]):
            step = script.pop(0)
            if "token" in step and token != step["token"]:
                self.fail(f"token {token!r}, expected {step['token']!r}")
            if "refuse" in step:
                self.last_status = step["refuse"]
                return web.json_response({"error": "refused"}, status=step["refuse"])
        self.last_status = 400
        ws = web.WebSocketResponse(protocols=("bearer",), autoping=True)
        await ws.prepare(request)
        ref: Any = None
        try:
            for step in script:
                if "hello" in step:
                    hello = {"type": "connected", "id": f"conn-{index}", "v": 2}
                    hello["heartbeat"] = step["hello"].get("heartbeat")
                    await ws.send_json(hello)
                elif "recv" in step:
                    frame = await self._next(ws, keep_pong=step["recv"].get("type") == "pong")
                    if frame is None:
                        self.fail(f"closed while expecting {step['recv']}")
                        return ws
                    ref = frame.get("ref")
                    if not matches(step["recv"], frame):
                        self.fail(f"got {frame}, expected {step['recv']}")
                elif "send" in step:
                    await ws.send_json(substitute(step["send"], ref))
                elif "close" in step:
                    await ws.close(code=step["close"])
                    return ws
                elif "drop" in step:
                    assert request.transport is not None
                    request.transport.abort()
                    return ws
                elif "sleep" in step:
                    await asyncio.sleep(step["sleep"])
                elif "pings" in step:
                    await self._pings(ws, step["pings"]["every"], step["pings"]["min"])
                    return ws
            while await self._next(ws) is not None:
                pass
        except ConnectionError:
            pass
        return ws

    async def _pings(self, ws: web.WebSocketResponse, every: float, least: int) -> None:
        """Send a JSON ping every ``every`` s until the client closes; each needs a pong."""
        answered = 0
        while not ws.closed:
            await asyncio.sleep(every)
            try:
                await ws.send_json({"type": "ping"})
            except ConnectionError:
                break
            frame = await self._next(ws, keep_pong=True)
            if frame is None:
                break
            if frame != {"type": "pong"}:
                self.fail(f"got {frame}, expected a pong")
            answered += 1
        if answered < least:
            self.fail(f"{answered} pongs, expected at least {least}")

    @staticmethod
    async def _next(ws: web.WebSocketResponse, keep_pong: bool = False) -> dict[str, Any] | None:
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                return None
            frame = json.loads(msg.data)
            if keep_pong or frame != {"type": "pong"}:
                return frame if isinstance(frame, dict) else {}
