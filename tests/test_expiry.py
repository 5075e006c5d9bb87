"""Credentials that expire mid-connection close it with 1008."""

from __future__ import annotations

import time

import jwt
from aiohttp import web

from lucent_ws import WebSocketManager, jwt_authenticator
from lucent_ws.codes import CloseCode

from .conftest import HubFactory, open_peer

SECRET = "test-secret-that-is-long-enough-for-hs256"


async def test_connection_closes_with_1008_when_jwt_expires(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=jwt_authenticator(SECRET), require_auth=True)
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 2}, SECRET, algorithm="HS256")
    peer = await open_peer(client, headers={"Authorization": f"Bearer {token}"})
    assert manager.get_meta(peer.id, "userId") == "u1"
    assert await peer.request({"type": "ping"}) == {"type": "pong"}
    started = time.monotonic()
    assert await peer.expect_close(timeout=5) == CloseCode.POLICY_VIOLATION
    assert time.monotonic() - started < 3.5
    assert len(manager) == 0
    assert manager.get_stats()["evictions"]["expired"] == 1


async def test_identity_without_expiry_stays(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    def authenticate(request: web.Request) -> dict[str, object]:
        return {"userId": 1, "expiresAt": "not a number"}

    client = await make_hub(authenticate=authenticate)
    peer = await open_peer(client)
    assert await peer.request({"type": "ping"}) == {"type": "pong"}
    assert manager.get_meta(peer.id, "userId") == 1
    await peer.ws.close()
