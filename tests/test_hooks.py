"""``on_join_room``: sync, async, denying, raising; strict per-connection ordering."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lucent_ws import Connection, WebSocketManager

from .conftest import HubFactory, Peer, open_peer


def only_public(room: str, conn: Connection) -> bool:
    return not room.startswith("private-") or conn.meta.get("userId") is not None


async def async_only_public(room: str, conn: Connection) -> bool:
    await asyncio.sleep(0.01)
    return only_public(room, conn)


@pytest.mark.parametrize("hook", [only_public, async_only_public])
async def test_hook_allows_and_denies(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer], hook: object
) -> None:
    client = await make_hub(on_join_room=hook)
    peers.append(peer := await open_peer(client))
    await peer.join("public")
    reply = await peer.request({"type": "join", "room": "private-1", "ref": 3})
    assert reply == {
        "type": "error",
        "code": "forbidden",
        "message": "Access denied to room 'private-1'",
        "ref": 3,
    }
    assert manager.get_connection_rooms(peer.id) == ["public"]
    assert manager.get_room_members("private-1") == []
    # metadata set server-side is what the hook sees
    manager.set_meta(peer.id, "userId", 7)
    await peer.join("private-1")


async def test_hook_receives_connection_with_request(
    make_hub: HubFactory, peers: list[Peer]
) -> None:
    seen: list[tuple[str, str, str]] = []

    def hook(room: str, conn: Connection) -> bool:
        seen.append((room, conn.id, conn.request.path))
        return True

    client = await make_hub(on_join_room=hook)
    peers.append(peer := await open_peer(client))
    await peer.join("r")
    assert seen == [("r", peer.id, "/ws")]


async def test_raising_hook_is_internal_error_and_logged(
    make_hub: HubFactory,
    manager: WebSocketManager,
    peers: list[Peer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(room: str, conn: Connection) -> bool:
        raise RuntimeError("database down")

    client = await make_hub(on_join_room=broken)
    peers.append(peer := await open_peer(client))
    with caplog.at_level(logging.ERROR, logger="lucent_ws"):
        reply = await peer.request({"type": "join", "room": "r", "ref": 1})
    assert reply == {
        "type": "error",
        "code": "internal_error",
        "message": "Internal server error",
        "ref": 1,
    }
    assert "database down" not in str(reply)
    assert any("database down" in (r.exc_text or "") for r in caplog.records)
    assert manager.list_rooms() == []
    assert await peer.request({"type": "ping"}) == {"type": "pong"}  # still usable


async def test_leave_never_overtakes_a_join_whose_hook_is_running(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    release = asyncio.Event()

    async def slow(room: str, conn: Connection) -> bool:
        await release.wait()
        return True

    client = await make_hub(on_join_room=slow)
    peers.append(peer := await open_peer(client))
    await peer.send({"type": "join", "room": "r", "ref": 1})
    await peer.send({"type": "leave", "room": "r", "ref": 2})
    await peer.send({"type": "ping", "ref": 3})
    await asyncio.sleep(0.05)  # room for a wrong implementation to handle the leave early
    assert manager.list_rooms() == []
    release.set()
    assert await peer.recv() == {"type": "joined", "room": "r", "ref": 1}
    assert await peer.recv() == {"type": "left", "room": "r", "ref": 2}
    assert await peer.recv() == {"type": "pong", "ref": 3}
    assert manager.list_rooms() == []


async def test_no_zombie_when_client_leaves_during_hook(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    returned = asyncio.Event()

    async def slow(room: str, conn: Connection) -> bool:
        entered.set()
        await release.wait()
        returned.set()
        return True

    client = await make_hub(on_join_room=slow)
    peer = await open_peer(client)
    await peer.send({"type": "join", "room": "r"})
    await entered.wait()
    manager.disconnect(peer.id)
    await peer.expect_close()
    release.set()
    await returned.wait()
    await asyncio.sleep(0)  # the session resumes after the hook in the next step
    assert manager.list_rooms() == []
    assert len(manager) == 0
