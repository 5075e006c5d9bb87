"""Room policies and application hooks, seen from WebSocket clients."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.connection import Connection
from lucent_ws.errors import ConfigurationError, Forbidden
from lucent_ws.policy import Policies, RoomPolicy

from .conftest import HubFactory, Peer, open_peer


async def test_client_publish_none_refuses_every_client_broadcast(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    manager.policies = Policies([RoomPolicy("posts", client_publish="none")])
    client = await make_hub()
    for path in ("/ws", "/ws?v=2"):
        writer, reader = await open_peer(client, path), await open_peer(client, path)
        peers.extend([writer, reader])
        await writer.join("posts")
        await reader.join("posts")
        reply = await writer.request(
            {"type": "broadcast", "room": "posts", "payload": 1, "ref": "r"}
        )
        assert (reply["code"], reply["ref"]) == ("publish_forbidden", "r"), reply
        # The server may still publish there.
        assert manager.broadcast_to_room("posts", {"server": True}) >= 2
        got = await reader.recv()
        assert got in (
            {"server": True},
            {"type": "message", "room": "posts", "from": None, "payload": {"server": True}},
        ), got
        await writer.recv()


async def test_max_members_refuses_the_join_over_it(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    manager.policies = Policies([RoomPolicy("duo", max_members=2)])
    for _ in range(3):
        peers.append(await open_peer(client))
    await peers[0].join("duo")
    await peers[1].join("duo")
    reply = await peers[2].request({"type": "join", "room": "duo", "ref": 1})
    assert (reply["code"], reply["ref"]) == ("room_full", 1), reply
    assert manager.room_size("duo") == 2
    await peers[0].request({"type": "leave", "room": "duo"})
    await peers[2].join("duo")  # room again: the place is taken


async def test_policies_option_configures_the_app_manager_or_is_refused() -> None:
    own = WebSocketManager(heartbeat=None, policies=[RoomPolicy("a", max_members=1)])
    create_app(manager=own, policies=[RoomPolicy("a", max_members=1)], admin=False)  # agrees
    with pytest.raises(ConfigurationError, match="policies"):
        create_app(manager=own, policies=[RoomPolicy("a", max_members=2)], admin=False)


async def test_on_publish_transforms_or_refuses(make_hub: HubFactory, peers: list[Peer]) -> None:
    async def on_publish(room: str, conn: Connection, payload: Any) -> Any:
        await asyncio.sleep(0)
        if payload == "secret":
            raise Forbidden("No secrets here")
        return {"text": payload, "by": conn.meta.get("name", "anon")}

    client = await make_hub(on_publish=on_publish)
    writer, reader = await open_peer(client, "/ws?v=2"), await open_peer(client, "/ws?v=2")
    peers.extend([writer, reader])
    await writer.join("chat")
    await reader.join("chat")
    refused = await writer.request(
        {"type": "broadcast", "room": "chat", "payload": "secret", "ref": 1}
    )
    assert refused == {
        "type": "error",
        "code": "publish_forbidden",
        "message": "No secrets here",
        "ref": 1,
    }
    ack = await writer.request({"type": "broadcast", "room": "chat", "payload": "hi", "ref": 2})
    assert ack == {"type": "ack", "ref": 2, "delivered": 1}
    assert (await reader.recv())["payload"] == {"text": "hi", "by": "anon"}


async def test_connect_disconnect_and_leave_hooks_see_the_connection(
    make_hub: HubFactory, peers: list[Peer]
) -> None:
    seen: list[tuple[str, Any]] = []
    gone = asyncio.Event()

    def on_connect(conn: Connection) -> None:
        seen.append(("connect", conn.id))

    async def on_disconnect(conn: Connection, code: int) -> None:
        seen.append(("disconnect", code))
        gone.set()

    def on_leave_room(room: str, conn: Connection) -> None:
        seen.append(("leave", room))

    client = await make_hub(
        on_connect=on_connect, on_disconnect=on_disconnect, on_leave_room=on_leave_room
    )
    peer = await open_peer(client, "/ws?v=2")
    await peer.join("r")
    await peer.request({"type": "leave", "room": "r"})
    await peer.request({"type": "leave", "room": "r"})  # not a member: no second hook call
    await peer.ws.close(code=4321)
    await asyncio.wait_for(gone.wait(), 5)
    assert seen == [("connect", peer.id), ("leave", "r"), ("disconnect", 4321)]


async def test_application_messages_get_replies_with_their_ref(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    @manager.message("typing")
    async def typing(conn: Connection, msg: dict[str, Any]) -> Any:
        return {"room": msg.get("room"), "ok": True}

    @manager.message("fire")
    def fire(conn: Connection, msg: dict[str, Any]) -> None:
        manager.send_to(conn.id, {"fired": msg.get("n")})

    client = await make_hub()
    for path in ("/ws", "/ws?v=2"):
        peer = await open_peer(client, path)
        peers.append(peer)
        reply = await peer.request({"type": "typing", "room": "x", "ref": "t1"})
        assert reply == {"type": "reply", "ref": "t1", "data": {"room": "x", "ok": True}}
        await peer.send({"type": "fire", "n": 3})  # no ref, returns None: no reply
        got = await peer.recv()
        assert got in (
            {"fired": 3},
            {"type": "message", "room": None, "from": None, "payload": {"fired": 3}},
        )
        assert (await peer.request({"type": "nope"}))["code"] == "unknown_type"
    with pytest.raises(ConfigurationError):
        manager.message("join")


async def test_a_hook_that_raises_breaks_nothing_else(
    make_hub: HubFactory,
    manager: WebSocketManager,
    peers: list[Peer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    @manager.message("boom")
    def boom(conn: Connection, msg: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    def on_connect(conn: Connection) -> None:
        raise RuntimeError("connect bug")

    client = await make_hub(on_connect=on_connect)
    caplog.set_level(logging.ERROR, "lucent_ws")
    a, b = await open_peer(client, "/ws?v=2"), await open_peer(client, "/ws?v=2")
    peers.extend([a, b])
    assert (await a.recv())["code"] == "internal_error"  # from on_connect
    assert (await b.recv())["code"] == "internal_error"
    await a.join("r")
    await b.join("r")
    reply = await a.request({"type": "boom", "ref": 5})
    assert reply == {
        "type": "error",
        "code": "internal_error",
        "message": "Internal server error",
        "ref": 5,
    }
    ack = await a.request({"type": "broadcast", "room": "r", "payload": 1, "ref": 6})
    assert ack["type"] == "ack"
    assert ack["delivered"] == 1
    assert (await b.recv())["payload"] == 1
    assert "handler bug" in caplog.text
    assert "connect bug" in caplog.text
