"""Protocol v2 from a client's side: envelopes, the greeting, and v1 unchanged beside it."""

from __future__ import annotations

from typing import Any

import pytest

from lucent_ws import WebSocketManager, jsoncodec
from lucent_ws.config import HeartbeatConfig
from lucent_ws.delivery import Delivery
from lucent_ws.envelope import V2, RoomMessage
from lucent_ws.hub import Hub
from lucent_ws.outbox import Outbox
from lucent_ws.stats import Counters

from .conftest import HubFactory, Peer, open_peer
from .fakes import FakeTransport, fake_connect


async def test_v2_greeting_tells_the_version_and_the_heartbeat(make_hub: HubFactory) -> None:
    client = await make_hub(heartbeat=HeartbeatConfig(20, 5))
    ws = await client.ws_connect("/ws?v=2")
    hello = (await ws.receive(timeout=5)).json()
    assert hello == {
        "type": "connected",
        "id": hello["id"],
        "v": 2,
        "heartbeat": {"interval": 20, "timeout": 5},
    }
    await ws.close()
    v1 = await client.ws_connect("/ws")
    assert set((await v1.receive(timeout=5)).json()) == {"type", "id"}  # v1 unchanged
    await v1.close()


async def test_v2_greeting_says_null_when_the_heartbeat_is_off(make_hub: HubFactory) -> None:
    client = await make_hub()
    ws = await client.ws_connect("/ws?v=2")
    assert (await ws.receive(timeout=5)).json()["heartbeat"] is None
    await ws.close()


@pytest.mark.parametrize("asked", ["3", "0", "two", ""])
async def test_an_unknown_version_is_refused_before_the_upgrade(
    make_hub: HubFactory, asked: str
) -> None:
    client = await make_hub()
    response = await client.get(f"/ws?v={asked}", headers={"Upgrade": "websocket"})
    assert response.status == 400
    assert (await response.json())["error"] == "unsupported_version"


async def test_every_payload_reaches_v2_in_an_envelope_and_v1_as_before(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    v1 = await open_peer(client)
    v2 = await open_peer(client, "/ws?v=2")
    sender = await open_peer(client, "/ws?v=2")
    peers.extend([v1, v2, sender])
    for peer in peers:
        await peer.join("posts")

    assert manager.broadcast_to_room("posts", {"n": 1}) == 3
    assert await v1.recv() == {"n": 1}
    assert await v2.recv() == {
        "type": "message",
        "room": "posts",
        "from": None,
        "payload": {"n": 1},
    }
    await sender.recv()

    manager.send_to(v2.id, [1, 2])
    manager.send_to(v1.id, [1, 2])
    assert await v2.recv() == {"type": "message", "room": None, "from": None, "payload": [1, 2]}
    assert await v1.recv() == [1, 2]

    assert manager.broadcast_all("hi", exclude=[sender.id]) == 2
    assert await v2.recv() == {"type": "message", "room": None, "from": None, "payload": "hi"}
    assert await v1.recv() == "hi"

    reply = await sender.request(
        {"type": "broadcast", "room": "posts", "payload": {"x": None}, "ref": 9}
    )
    assert reply == {"type": "ack", "ref": 9, "delivered": 2}
    relayed = {"type": "message", "room": "posts", "from": sender.id, "payload": {"x": None}}
    assert await v1.recv() == relayed  # a client broadcast was already an envelope in v1
    assert await v2.recv() == relayed


async def test_v1_does_not_have_the_v2_types(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub()
    v1 = await open_peer(client)
    v2 = await open_peer(client, "/ws?v=2")
    peers.extend([v1, v2])
    for kind in ("presence", "history"):
        message = {"type": kind, "room": "posts"}
        assert (await v1.request(message))["code"] == "unknown_type"
        assert (await v2.request(message))["code"] == f"{kind}_disabled"


def _counting_delivery(monkeypatch: pytest.MonkeyPatch) -> tuple[Delivery, Hub, list[bytes]]:
    import lucent_ws.delivery as delivery_module

    framed: list[bytes] = []
    real = delivery_module.text_frame

    def counting(data: bytes) -> bytes:
        framed.append(data)
        return real(data)

    monkeypatch.setattr(delivery_module, "text_frame", counting)
    hub = Hub()
    return Delivery(hub, Outbox(Counters(), lambda conn: None)), hub, framed


def _member(hub: Hub, manager: WebSocketManager, version: int, room: str) -> FakeTransport:
    conn, transport = fake_connect(manager, version=version)
    hub.add(conn)
    hub.join(conn, room)
    return transport


@pytest.mark.parametrize(
    ("v1_members", "v2_members", "sender", "frames"),
    [
        (3, 0, None, 1),  # a v1 room: one frame, as before v2
        (0, 3, None, 1),  # a v2 room: one frame
        (2, 2, None, 2),  # mixed, from the server: one frame per version
        (2, 2, "someone", 1),  # mixed, from a client: both versions get the same bytes
    ],
)
def test_a_broadcast_frames_its_payload_once_per_version(
    monkeypatch: pytest.MonkeyPatch,
    manager: WebSocketManager,
    v1_members: int,
    v2_members: int,
    sender: str | None,
    frames: int,
) -> None:
    delivery, hub, framed = _counting_delivery(monkeypatch)
    transports = [_member(hub, manager, 1, "r") for _ in range(v1_members)]
    transports += [_member(hub, manager, V2, "r") for _ in range(v2_members)]
    framed.clear()
    payload = jsoncodec.dumps({"big": "x" * 100})
    assert delivery.room(RoomMessage("r", payload, sender)) == v1_members + v2_members
    print(f"members v1={v1_members} v2={v2_members} sender={sender}: {len(framed)} frame(s)")
    assert len(framed) == frames


def test_exclusions_hold_in_both_halves_of_a_mixed_room(
    monkeypatch: pytest.MonkeyPatch, manager: WebSocketManager
) -> None:
    delivery, hub, _ = _counting_delivery(monkeypatch)
    members = [fake_connect(manager, version=v) for v in (1, 1, V2, V2)]
    for conn, _ in members:
        hub.add(conn)
        hub.join(conn, "r")
    excluded = [members[0][0].id, members[2][0].id, "elsewhere"]
    assert delivery.room(RoomMessage("r", b"1"), excluded) == 2
    assert delivery.everyone(b"2", excluded) == 2
    assert delivery.direct(members[3][0].id, b"3")
    assert not delivery.direct("nobody", b"4")
    manager.flush()
    got: list[Any] = [t.messages()[1:] for _, t in members]
    assert got[0] == []
    assert got[2] == []
    assert got[1] == [1, 2]
    envelope = {"type": "message", "room": None, "from": None}
    assert got[3] == [
        {"type": "message", "room": "r", "from": None, "payload": 1},
        {**envelope, "payload": 2},
        {**envelope, "payload": 3},
    ]
