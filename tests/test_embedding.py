"""Embedding the hub in a host aiohttp app: sub-app, ``setup``, custom route, host handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

import lucent_ws
from lucent_ws import MANAGER_KEY, WebSocketManager, create_app, setup, websocket_handler

from .conftest import Peer, open_peer
from .waiting import wait_until

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

POST = {"type": "post:created", "doc": {"id": 1, "title": "Hello"}}


def publish_route(get_manager: Callable[[web.Request], WebSocketManager]) -> web.RouteDef:
    """A host-app route ``POST /posts`` that announces the new post to room "posts"."""

    async def create_post(request: web.Request) -> web.Response:
        doc = await request.json()
        delivered = get_manager(request).broadcast_to_room(
            "posts", {"type": "post:created", "doc": doc}
        )
        return web.json_response({"delivered": delivered})

    return web.post("/posts", create_post)


async def publish_and_receive(client: Client, peer: Peer, path: str = "/posts") -> None:
    resp = await client.post(path, json=POST["doc"])
    assert resp.status == 200
    assert await resp.json() == {"delivered": 1}
    assert await peer.recv() == POST


async def test_mounted_as_subapp_serves_prefixed_path(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    host = web.Application()
    host.add_routes([publish_route(lambda request: manager)])
    host.add_subapp("/realtime/", create_app(manager=manager, heartbeat=False))
    client = await aiohttp_client(host)
    peer = await open_peer(client, "/realtime/ws")
    peers.append(peer)
    await peer.join("posts")
    await publish_and_receive(client, peer)
    # The endpoint lives under the prefix only.
    assert (await client.get("/ws")).status == 404


async def test_setup_on_existing_app(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    host = web.Application()
    host.add_routes([web.get("/", home)])
    handler = setup(host, path="/live", manager=manager, heartbeat=False)
    assert handler.manager is manager
    host.add_routes([publish_route(lambda request: request.config_dict[MANAGER_KEY])])
    client = await aiohttp_client(host)
    assert await (await client.get("/")).text() == "home"
    peer = await open_peer(client, "/live")
    peers.append(peer)
    await peer.join("posts")
    await publish_and_receive(client, peer)


async def home(request: web.Request) -> web.Response:
    return web.Response(text="home")


async def test_config_dict_reaches_manager_from_nested_host_subapp(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    host = web.Application()
    setup(host, manager=manager, heartbeat=False)
    api = web.Application()
    api.add_routes([publish_route(lambda request: request.config_dict[MANAGER_KEY])])
    host.add_subapp("/api/", api)
    client = await aiohttp_client(host)
    peer = await open_peer(client)
    peers.append(peer)
    await peer.join("posts")
    await publish_and_receive(client, peer, "/api/posts")


async def test_websocket_handler_on_custom_route(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    seen_rooms: list[str] = []

    async def on_join_room(room: str, conn: Any) -> bool:
        seen_rooms.append(room)
        return room != "secret"

    host = web.Application()
    host.router.add_get(
        "/custom/socket",
        websocket_handler(manager=manager, heartbeat=False, on_join_room=on_join_room),
    )
    host.add_routes([publish_route(lambda request: manager)])
    client = await aiohttp_client(host)
    peer = await open_peer(client, "/custom/socket")
    peers.append(peer)
    await peer.join("posts")
    reply = await peer.request({"type": "join", "room": "secret"})
    assert reply["code"] == "forbidden"
    assert seen_rooms == ["posts", "secret"]
    await publish_and_receive(client, peer)


async def test_default_ws_manager_from_host_handler(
    aiohttp_client: ClientFactory, peers: list[Peer]
) -> None:
    default = lucent_ws.ws_manager
    assert len(default) == 0
    host = web.Application()
    hub = create_app()  # no manager given: the module-level default
    assert hub[MANAGER_KEY] is default
    host.add_subapp("/realtime/", hub)
    host.add_routes([publish_route(lambda request: lucent_ws.ws_manager)])
    client = await aiohttp_client(host)
    peer = await open_peer(client, "/realtime/ws")
    peers.append(peer)
    assert default.get_connection(peer.id) is not None
    await peer.join("posts")
    await publish_and_receive(client, peer)
    await peer.ws.close()
    await wait_until(lambda: len(default) == 0)


async def test_create_app_returns_a_fresh_app_each_call(
    aiohttp_client: ClientFactory, peers: list[Peer]
) -> None:
    first_manager = WebSocketManager(heartbeat=None)
    second_manager = WebSocketManager(heartbeat=None)
    first = create_app(manager=first_manager, heartbeat=False)
    second = create_app(manager=second_manager, heartbeat=False)
    assert first is not second
    host = web.Application()
    host.add_subapp("/one/", first)
    host.add_subapp("/two/", second)
    client = await aiohttp_client(host)
    one = await open_peer(client, "/one/ws")
    two = await open_peer(client, "/two/ws")
    peers.extend([one, two])
    await one.join("posts")
    await two.join("posts")
    assert first_manager.get_room_members("posts") == [one.id]
    assert second_manager.get_room_members("posts") == [two.id]
    # Each mounted hub fans out to its own clients only.
    assert first_manager.broadcast_to_room("posts", POST) == 1
    assert await one.recv() == POST
    assert second_manager.broadcast_to_room("posts", {"type": "second"}) == 1
    assert await two.recv() == {"type": "second"}


async def test_two_mounts_can_share_one_manager(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    host = web.Application()
    host.add_subapp("/one/", create_app(manager=manager, heartbeat=False))
    host.add_subapp("/two/", create_app(manager=manager, heartbeat=False))
    client = await aiohttp_client(host)
    one = await open_peer(client, "/one/ws")
    two = await open_peer(client, "/two/ws")
    peers.extend([one, two])
    await one.join("posts")
    await two.join("posts")
    assert manager.broadcast_to_room("posts", POST) == 2
    assert await one.recv() == POST
    assert await two.recv() == POST


async def test_host_shutdown_closes_subapp_clients_with_1001(
    aiohttp_client: ClientFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    host = web.Application()
    host.add_subapp("/realtime/", create_app(manager=manager, heartbeat=False))
    client = await aiohttp_client(host)
    peer = await open_peer(client, "/realtime/ws")
    peers.append(peer)
    # The client reads while the host shuts down, as a client does: the shutdown waits
    # for its answer to the close frame (within the manager's close timeout).
    code, _ = await asyncio.gather(peer.expect_close(), client.server.runner.shutdown())
    assert code == 1001
    assert len(manager) == 0
