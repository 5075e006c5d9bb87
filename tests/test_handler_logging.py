"""The handler fails closed on a crashing hook and keeps offered subprotocols out of logs."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from lucent_ws import WebSocketManager

from .conftest import UPGRADE_HEADERS, HubFactory


async def test_crashing_authenticate_hook_fails_closed(
    make_hub: HubFactory, manager: WebSocketManager, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: web.Request) -> None:
        raise RuntimeError("identity service down")

    client = await make_hub(authenticate=broken)
    with caplog.at_level(logging.ERROR, logger="lucent_ws"):
        resp = await client.get("/ws", headers=UPGRADE_HEADERS)
    assert resp.status == 500
    assert await resp.json() == {"error": "internal_error", "message": "Authentication failed"}
    assert len(manager) == 0
    assert manager.get_stats()["handshakeRefusals"] == {"auth_error": 1}
    assert any("identity service down" in (r.exc_text or "") for r in caplog.records)


async def test_offered_subprotocols_are_redacted_in_aiohttp_warning(
    make_hub: HubFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_hub()
    with caplog.at_level(logging.WARNING, logger="aiohttp.websocket"):
        ws = await client.ws_connect("/ws", protocols=("Bearer", "eyJ-secret-token"))
        await ws.receive_json()
        await ws.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "aiohttp.websocket"]
    assert any("[redacted]" in m for m in messages), messages
    assert not any("secret" in m for m in messages)
