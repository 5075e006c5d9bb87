"""Every row of the protocol table and every error code, through a real WebSocket."""

from __future__ import annotations

import aiohttp
import pytest

from lucent_ws import Limits, WebSocketManager
from lucent_ws.codes import CloseCode

from .conftest import HubFactory, Peer, open_peer


async def test_connected_first_with_the_registered_id(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    peer = await open_peer(client)
    peers.append(peer)
    assert manager.connection_ids() == [peer.id]


async def test_join_leave_replies_echo_ref(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub()
    peers.append(peer := await open_peer(client))
    assert await peer.request({"type": "join", "room": "posts", "ref": 1}) == {
        "type": "joined",
        "room": "posts",
        "ref": 1,
    }
    assert await peer.request({"type": "join", "room": "posts", "ref": 2}) == {
        "type": "joined",
        "room": "posts",
        "ref": 2,
    }
    assert await peer.request({"type": "leave", "room": "posts", "ref": "x"}) == {
        "type": "left",
        "room": "posts",
        "ref": "x",
    }
    # leaving is idempotent
    assert await peer.request({"type": "leave", "room": "posts"}) == {
        "type": "left",
        "room": "posts",
    }


async def test_broadcast_relays_to_other_members_and_acks(
    make_hub: HubFactory, peers: list[Peer]
) -> None:
    client = await make_hub()
    a, b, c, outsider = [await open_peer(client) for _ in range(4)]
    peers.extend([a, b, c, outsider])
    for peer in (a, b, c):
        await peer.join("chat")
    payload = {"text": "hi", "n": [1, 2, None]}
    await a.send({"type": "broadcast", "room": "chat", "payload": payload, "ref": 5})
    assert await a.recv() == {"type": "ack", "ref": 5, "delivered": 2}
    expected = {"type": "message", "room": "chat", "from": a.id, "payload": payload}
    assert await b.recv() == expected
    assert await c.recv() == expected
    # without ref: no ack; null is a valid payload
    await a.send({"type": "broadcast", "room": "chat", "payload": None})
    assert (await b.recv())["payload"] is None
    assert await a.request({"type": "ping"}) == {"type": "pong"}  # no ack came first
    assert await outsider.request({"type": "ping", "ref": 1}) == {"type": "pong", "ref": 1}


async def test_pong_gets_no_reply(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub()
    peers.append(peer := await open_peer(client))
    await peer.send({"type": "pong"})
    assert await peer.request({"type": "ping", "ref": 2}) == {"type": "pong", "ref": 2}


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ("{oops", "invalid_json", "Invalid JSON"),
        ("[1,2]", "invalid_message", "Message must be a JSON object"),
        ('{"type":"join","room":7,"ref":4}', "invalid_message", None),
        ('{"type":"nope","ref":4}', "unknown_type", "Unknown type: nope"),
        ('{"type":"broadcast","room":"r","payload":1,"ref":4}', "not_member", None),
        ('{"type":"join","ref":{"bad":1}}', "invalid_message", None),
    ],
)
async def test_error_codes(
    make_hub: HubFactory, peers: list[Peer], frame: str, code: str, message: str | None
) -> None:
    client = await make_hub()
    peers.append(peer := await open_peer(client))
    await peer.ws.send_str(frame)
    reply = await peer.recv()
    assert reply["type"] == "error"
    assert reply["code"] == code
    if message is not None:
        assert reply["message"] == message
    if '"ref":4' in frame:
        assert reply["ref"] == 4
    else:
        assert "ref" not in reply
    # the connection stays usable
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


async def test_binary_frame_is_unsupported_data(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub()
    peers.append(peer := await open_peer(client))
    await peer.ws.send_bytes(b"\x00\x01")
    reply = await peer.recv()
    assert reply["code"] == "unsupported_data"
    assert await peer.request({"type": "ping"}) == {"type": "pong"}


async def test_too_many_rooms(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub(limits=Limits(max_rooms=2, rate_limit=0))
    peers.append(peer := await open_peer(client))
    await peer.join("a")
    await peer.join("b")
    reply = await peer.request({"type": "join", "room": "c", "ref": 1})
    assert reply["code"] == "too_many_rooms"
    assert reply["ref"] == 1
    await peer.join("a")  # already a member: still fine
    await peer.request({"type": "leave", "room": "a"})
    await peer.join("c")


async def test_rate_limited_then_1008(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(limits=Limits(rate_limit=5, rate_burst=5, error_budget=10))
    peers.append(peer := await open_peer(client))
    peers.append(bystander := await open_peer(client))
    for n in range(40):
        await peer.send({"type": "ping", "ref": n})
    replies: list[tuple[str, int]] = []
    while True:
        msg = await peer.ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        data = msg.json()
        replies.append((data.get("code", data["type"]), data["ref"]))
    assert peer.ws.close_code == CloseCode.POLICY_VIOLATION
    assert replies[:5] == [("pong", n) for n in range(5)]
    assert "rate_limited" in {code for code, _ in replies}
    # every reply, rate_limited included, echoes its message's ref
    assert [ref for _, ref in replies] == list(range(len(replies)))
    assert manager.get_stats()["evictions"]["rate_limit"] == 1
    assert await bystander.request({"type": "ping"}) == {"type": "pong"}


async def test_error_abuse_closes_with_1008(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub(limits=Limits(rate_limit=0, error_budget=20))
    peers.append(peer := await open_peer(client))
    for _ in range(25):
        await peer.ws.send_str("garbage")
    errors = 0
    while True:
        msg = await peer.ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        errors += 1
    assert errors == 21  # the budget, then the reply that broke it
    assert peer.ws.close_code == CloseCode.POLICY_VIOLATION


async def test_message_size_limit_is_inclusive(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub(limits=Limits(max_message_size=1000, rate_limit=0))
    peers.append(peer := await open_peer(client))
    base = '{"type":"ping","pad":""}'
    await peer.ws.send_str(base[:-2] + "x" * (1000 - len(base)) + '"}')
    assert await peer.recv() == {"type": "pong"}
    await peer.ws.send_str(base[:-2] + "x" * (1001 - len(base)) + '"}')
    assert await peer.expect_close() == CloseCode.MESSAGE_TOO_BIG


async def test_server_side_calls_reach_clients(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a, b = await open_peer(client), await open_peer(client)
    peers.extend([a, b])
    await a.join("posts")
    await b.join("posts")
    doc = {"type": "post:created", "doc": {"id": 1}}
    assert manager.broadcast_to_room("posts", doc, exclude=[b.id]) == 1
    assert await a.recv() == doc
    assert manager.send_to(b.id, {"direct": True})
    assert await b.recv() == {"direct": True}
    assert manager.broadcast_all("everyone") == 2
    assert await a.recv() == "everyone"
    assert await b.recv() == "everyone"
    assert manager.disconnect(a.id)
    assert await a.expect_close() == CloseCode.DISCONNECTED
