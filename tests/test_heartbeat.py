"""Heartbeat through real sockets: silent clients evicted with 4000 on time, live ones kept."""

from __future__ import annotations

import asyncio

import aiohttp

from lucent_ws import HeartbeatConfig, WebSocketManager
from lucent_ws.codes import CloseCode

from .conftest import HubFactory, Peer, open_peer

INTERVAL = 0.6
TIMEOUT = 0.3


async def test_silent_client_is_evicted_within_the_window(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(heartbeat=HeartbeatConfig(INTERVAL, TIMEOUT))
    ws = await client.ws_connect("/ws", autoping=False)
    loop = asyncio.get_running_loop()
    pinged_at = None
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is aiohttp.WSMsgType.TEXT and msg.json() == {"type": "ping"}:
            pinged_at = loop.time()
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert pinged_at is not None
    waited = loop.time() - pinged_at
    assert waited + 0.02 >= TIMEOUT  # scheduling jitter of the client's own clock
    assert waited <= TIMEOUT + 1.0
    assert ws.close_code == CloseCode.HEARTBEAT_TIMEOUT
    assert len(manager) == 0
    assert manager.get_stats()["evictions"]["heartbeat"] == 1
    await ws.close()


async def test_heartbeat_autostarts_with_first_connection(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    await make_hub(heartbeat=HeartbeatConfig(INTERVAL, TIMEOUT))
    assert manager.get_stats()["heartbeatActive"] is False
    client = await make_hub(heartbeat=HeartbeatConfig(INTERVAL, TIMEOUT))
    peers.append(await open_peer(client))
    assert manager.get_stats()["heartbeatActive"] is True


async def test_client_answering_json_pings_is_kept(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(heartbeat=HeartbeatConfig(INTERVAL, TIMEOUT))
    ws = await client.ws_connect("/ws", autoping=False)  # protocol PINGs go unanswered
    pings = 0
    while pings < 4:
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING), msg
        if msg.type is aiohttp.WSMsgType.TEXT and msg.json() == {"type": "ping"}:
            pings += 1
            await ws.send_json({"type": "pong"})
    assert len(manager) == 1
    assert manager.get_stats()["evictions"]["heartbeat"] == 0
    await ws.close()


async def test_client_answering_only_protocol_pings_is_kept(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(heartbeat=HeartbeatConfig(INTERVAL, TIMEOUT))
    ws = await client.ws_connect("/ws", autoping=False)
    pings = 0
    while pings < 4:
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING), msg
        if msg.type is aiohttp.WSMsgType.PING:
            pings += 1
            await ws.pong(msg.data)  # what a browser does natively; never a JSON pong
    assert len(manager) == 1
    assert manager.get_stats()["evictions"]["heartbeat"] == 0
    await ws.close()
