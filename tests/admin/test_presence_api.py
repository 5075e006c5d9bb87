"""GET /admin/rooms/{room}/presence: the presence reply's shape, or presence_disabled."""

from __future__ import annotations

from lucent_ws.policy import Policies, RoomPolicy

from .conftest import Hub


async def test_presence_of_a_room_by_user_without_private_metadata(hub: Hub) -> None:
    hub.manager.policies = Policies([RoomPolicy("chat:*", presence=True, presence_info=("name",))])
    status, body = await hub.call("GET", "rooms/chat:1/presence")
    assert (status, body) == (200, {"room": "chat:1", "count": 0, "members": {}})
    peers = [await hub.peer("chat:1") for _ in range(2)]
    for peer in peers:
        hub.manager.set_meta(peer.id, "userId", "u1")
        hub.manager.set_meta(peer.id, "name", "Ann")
        hub.manager.set_meta(peer.id, "jwt", "secret-claims")
    status, body = await hub.call("GET", "rooms/chat:1/presence")
    assert status == 200
    assert body["count"] == 2
    assert sorted(e["id"] for e in body["members"]["u1"]) == sorted(p.id for p in peers)
    assert all(e["info"] == {"name": "Ann"} for e in body["members"]["u1"])
    assert "secret-claims" not in str(body)
    status, body = await hub.call("GET", "rooms/chat:1")  # the room route still answers
    assert status == 200
    assert body["total"] == 2
    for peer in peers:
        await peer.ws.close()


async def test_a_room_without_presence_answers_presence_disabled(hub: Hub) -> None:
    status, body = await hub.call("GET", "rooms/lobby/presence")
    assert status == 409
    assert body["error"] == "presence_disabled"
