"""Presence over a real /ws endpoint: replies, diffs, errors and what stays private."""

from __future__ import annotations

from lucent_ws import WebSocketManager
from lucent_ws.policy import RoomPolicy

from .conftest import HubFactory, Peer, open_peer

SECRET = "eyJ-secret-claim"
POLICIES = [
    RoomPolicy("chat:*", presence=True, join_leave=True, presence_info=("name",)),
    RoomPolicy("quiet", presence=True),
]


async def test_presence_groups_tabs_by_user_and_shows_only_presence_info(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    manager.policies = type(manager.policies)(POLICIES)
    client = await make_hub()
    tabs = []
    for _ in range(2):
        peer = await open_peer(client, "/ws?v=2")
        manager.set_meta(peer.id, "userId", 7)
        manager.set_meta(peer.id, "name", "Ann")
        manager.set_meta(peer.id, "token", SECRET)
        tabs.append(peer)
    peers.extend(tabs)
    for peer in tabs:
        await peer.join("chat:1")
    reply = await tabs[0].request({"type": "presence", "room": "chat:1", "ref": 1})
    diffs = []
    while reply["type"] == "presence_diff":  # a batch may arrive before the reply
        diffs.append(reply)
        reply = await tabs[0].recv()
    assert reply["type"] == "presence"
    assert reply["ref"] == 1
    expected = sorted([{"id": p.id, "info": {"name": "Ann"}} for p in tabs], key=lambda e: e["id"])
    # the reply plus the diffs after it are the room's presence
    assert manager.get_presence("chat:1") == {"count": 2, "members": {"7": expected}}
    assert SECRET not in str(reply) + str(diffs)

    v1 = await open_peer(client)  # protocol v1: never a presence frame
    peers.append(v1)
    await v1.join("chat:1")
    assert (await v1.request({"type": "presence", "room": "chat:1"}))["code"] == "unknown_type"

    await tabs[1].ws.close()
    seen = []
    while True:
        message = await tabs[0].recv()
        seen.append(message)
        if message["type"] == "presence_diff" and tabs[1].id in str(message["leaves"]):
            break
    assert message["count"] == 2  # tab 0 and the v1 member
    assert SECRET not in str(seen)
    assert (await v1.request({"type": "ping"})) == {"type": "pong"}  # nothing else queued


async def test_presence_needs_a_policy_and_membership(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    manager.policies = type(manager.policies)(POLICIES)
    client = await make_hub()
    peer = await open_peer(client, "/ws?v=2")
    peers.append(peer)
    reply = await peer.request({"type": "presence", "room": "chat:2", "ref": "a"})
    assert (reply["code"], reply["ref"]) == ("not_member", "a")
    await peer.join("plain")
    reply = await peer.request({"type": "presence", "room": "plain"})
    assert reply["code"] == "presence_disabled"
    assert manager.get_presence("plain") is None
    await peer.join("quiet")  # presence without join_leave: the state now, no diffs
    reply = await peer.request({"type": "presence", "room": "quiet"})
    assert reply == {
        "type": "presence",
        "room": "quiet",
        "count": 1,
        "members": {peer.id: [{"id": peer.id, "info": {}}]},
    }
