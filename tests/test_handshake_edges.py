"""Handshake edge cases: odd identities, expired credentials, shutdown mid-handshake."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from lucent_ws import Limits, WebSocketManager, drain
from lucent_ws.codes import CloseCode

from .conftest import HubFactory


def _not_a_mapping(request: web.Request) -> object:
    return ["not", "a", "mapping"]


def _expired(request: web.Request) -> dict[str, object]:
    return {"userId": 1, "expiresAt": time.time() - 1}


@pytest.mark.parametrize(
    ("authenticate", "status"),
    [(_not_a_mapping, 500), (_expired, 401)],
    ids=["identity-not-a-mapping-fails-closed", "credentials-already-expired"],
)
async def test_a_refused_identity_never_registers_a_connection(
    make_hub: HubFactory, manager: WebSocketManager, authenticate: object, status: int
) -> None:
    client = await make_hub(authenticate=authenticate)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws")
    assert info.value.status == status
    assert len(manager) == 0


async def test_a_handshake_in_flight_when_draining_starts_gets_1001(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> dict[str, object]:
        entered.set()
        await release.wait()
        return {"userId": 1}

    client = await make_hub(authenticate=slow)
    connecting = asyncio.create_task(client.ws_connect("/ws"))
    await entered.wait()
    await drain(client.app)
    release.set()
    ws = await connecting
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == CloseCode.GOING_AWAY
    assert len(manager) == 0
    await ws.close()


async def test_concurrent_handshakes_cannot_exceed_the_connection_limit(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    gate = asyncio.Event()
    two_inside = asyncio.Event()
    inside = 0

    async def slow(request: web.Request) -> None:
        nonlocal inside
        inside += 1
        if inside == 2:
            two_inside.set()
        await gate.wait()

    client = await make_hub(authenticate=slow, limits=Limits(max_connections=2, rate_limit=0))
    attempts = [asyncio.create_task(client.ws_connect("/ws")) for _ in range(4)]
    await asyncio.wait_for(two_inside.wait(), timeout=5)
    gate.set()
    results = await asyncio.gather(*attempts, return_exceptions=True)
    opened = [r for r in results if isinstance(r, aiohttp.ClientWebSocketResponse)]
    refused = [r for r in results if isinstance(r, aiohttp.WSServerHandshakeError)]
    assert len(opened) == 2
    assert [r.status for r in refused] == [503, 503]
    for ws in opened:
        await ws.close()
