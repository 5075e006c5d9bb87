"""History rooms over the wire (v2): offsets, recovery on join, ``history``, idempotent ids."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from lucent_ws import WebSocketManager
from lucent_ws.config import Limits
from lucent_ws.envelope import RoomMessage
from lucent_ws.policy import RoomPolicy

from .conftest import HubFactory, Peer, open_peer

POLICIES = [RoomPolicy("h:*", history_size=50, history_ttl=300)]


@pytest.fixture
def manager() -> WebSocketManager:
    return WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES, recover_max=20)


async def v2(client: Any, peers: list[Peer]) -> Peer:
    peer = await open_peer(client, "/ws?v=2")
    peers.append(peer)
    return peer


async def test_messages_get_contiguous_offsets_and_acks_tell_them(
    make_hub: HubFactory, peers: list[Peer]
) -> None:
    client = await make_hub()
    a, b = await v2(client, peers), await v2(client, peers)
    joined = await a.request({"type": "join", "room": "h:1"})
    assert joined["offset"] == 0, joined
    assert isinstance(joined["epoch"], str), joined
    epoch = joined["epoch"]
    assert (await b.request({"type": "join", "room": "h:1"}))["epoch"] == epoch
    for n in range(1, 4):
        ack = await b.request({"type": "broadcast", "room": "h:1", "payload": n, "ref": n})
        assert ack == {"type": "ack", "ref": n, "delivered": 1, "offset": n, "epoch": epoch}
        msg = await a.recv()
        assert msg == {
            "type": "message",
            "room": "h:1",
            "from": b.id,
            "payload": n,
            "offset": n,
            "epoch": epoch,
        }
    # a room without history is unchanged: no offset anywhere
    await a.request({"type": "join", "room": "plain"})
    assert await b.request({"type": "join", "room": "plain"}) == {"type": "joined", "room": "plain"}
    ack = await b.request({"type": "broadcast", "room": "plain", "payload": 0, "ref": 9})
    assert ack == {"type": "ack", "ref": 9, "delivered": 1}
    assert "offset" not in await a.recv()


async def test_a_rejoin_with_since_replays_what_was_missed_then_live(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a, b = await v2(client, peers), await v2(client, peers)
    epoch = (await a.request({"type": "join", "room": "h:r"}))["epoch"]
    await b.request({"type": "join", "room": "h:r"})
    await b.request({"type": "broadcast", "room": "h:r", "payload": "x1", "ref": 1})
    assert (await a.recv())["offset"] == 1
    await a.ws.close()
    for n in range(2, 7):
        manager.broadcast_to_room("h:r", f"x{n}")
    a2 = await v2(client, peers)
    since = {"offset": 1, "epoch": epoch}
    joined = await a2.request({"type": "join", "room": "h:r", "since": since, "ref": "j"})
    assert joined == {
        "type": "joined",
        "room": "h:r",
        "epoch": epoch,
        "offset": 6,
        "recovered": True,
        "missed": 5,
        "ref": "j",
    }
    replayed = [await a2.recv() for _ in range(5)]
    assert [m["offset"] for m in replayed] == [2, 3, 4, 5, 6]
    assert [m["payload"] for m in replayed] == ["x2", "x3", "x4", "x5", "x6"]
    assert all(m["replay"] is True and m["from"] is None for m in replayed)
    manager.broadcast_to_room("h:r", "live")
    live = await a2.recv()
    assert live["offset"] == 7
    assert "replay" not in live
    print("replayed 5 then live offset 7")


async def test_failed_recoveries_answer_a_reason_and_replay_nothing(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a = await v2(client, peers)
    epoch = (await a.request({"type": "join", "room": "h:f"}))["epoch"]
    for n in range(30):  # more than recover_max (20)
        manager.broadcast_to_room("h:f", n)
    for _ in range(30):
        await a.recv()
    cases = [("too_many", 5, epoch), ("ahead", None, epoch), ("epoch_changed", 5, "another")]
    cases.append(("too_many", 0, epoch))
    for reason, offset, since_epoch in cases:
        top = manager.get_history("h:f").offset
        since = {"offset": top + 1 if offset is None else offset, "epoch": since_epoch}
        missed = 0 if offset is None or since_epoch != epoch else top - offset
        peer = await v2(client, peers)
        joined = await peer.request({"type": "join", "room": "h:f", "since": since})
        assert (joined["recovered"], joined["reason"]) == (False, reason), joined
        assert (joined["missed"], joined["offset"]) == (missed, top), joined
        manager.broadcast_to_room("h:f", "next")
        nxt = await peer.recv()
        assert "replay" not in nxt, nxt  # no partial replay came first
        assert nxt["offset"] == top + 1, nxt
        await a.recv()


async def test_history_was_evicted_answers_too_old(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a = await v2(client, peers)
    epoch = (await a.request({"type": "join", "room": "h:o"}))["epoch"]
    for n in range(60):  # the ring keeps 50
        manager.broadcast_to_room("h:o", n)
    peer = await v2(client, peers)
    joined = await peer.request(
        {"type": "join", "room": "h:o", "since": {"offset": 5, "epoch": epoch}}
    )
    assert (joined["recovered"], joined["reason"], joined["missed"]) == (False, "too_old", 55)


async def test_a_replay_never_makes_the_client_a_slow_consumer(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(limits=Limits(rate_limit=0, max_outbound_buffer=16 * 1024))
    a = await v2(client, peers)
    epoch = (await a.request({"type": "join", "room": "h:big"}))["epoch"]
    for _ in range(10):
        manager.broadcast_to_room("h:big", "y" * 2000)  # 20 kB missed > what may be queued
    peer = await v2(client, peers)
    joined = await peer.request(
        {"type": "join", "room": "h:big", "since": {"offset": 0, "epoch": epoch}}
    )
    assert (joined["recovered"], joined["reason"], joined["missed"]) == (False, "too_large", 10)
    assert await peer.request({"type": "ping", "ref": 1}) == {"type": "pong", "ref": 1}
    ok = await peer.request(
        {"type": "join", "room": "h:big", "since": {"offset": 8, "epoch": epoch}}
    )
    # already a member: the position again, no replay
    assert ok == {"type": "joined", "room": "h:big", "epoch": epoch, "offset": 10}


async def test_history_requests(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a = await v2(client, peers)
    denied = await a.request({"type": "history", "room": "h:q", "ref": 1})
    assert denied["code"] == "not_member", denied
    off = await a.request({"type": "history", "room": "plain", "ref": 2})
    assert off["code"] == "history_disabled", off
    epoch = (await a.request({"type": "join", "room": "h:q"}))["epoch"]
    for n in range(1, 8):
        manager.broadcast_to_room("h:q", {"n": n})
    for _ in range(7):
        await a.recv()
    page = await a.request({"type": "history", "room": "h:q", "ref": 3})
    assert (page["epoch"], page["offset"], page["ref"]) == (epoch, 7, 3)
    assert [m["payload"]["n"] for m in page["messages"]] == list(range(1, 8))
    newest = await a.request({"type": "history", "room": "h:q", "limit": 2})
    assert [m["offset"] for m in newest["messages"]] == [6, 7]
    after = await a.request(
        {"type": "history", "room": "h:q", "since": {"offset": 3, "epoch": epoch}, "limit": 2}
    )
    assert [m["offset"] for m in after["messages"]] == [4, 5]
    assert all("replay" not in m for m in after["messages"])
    assert manager.get_history("h:q", since={"offset": 5, "epoch": epoch}).messages == [
        m for m in page["messages"] if m["offset"] > 5
    ]
    assert manager.get_history("h:q", limit=1).offset == 7


async def test_a_publish_id_is_published_once(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    a, b = await v2(client, peers), await v2(client, peers)
    epoch = (await a.request({"type": "join", "room": "h:i"}))["epoch"]
    await b.request({"type": "join", "room": "h:i"})
    first = await b.request(
        {"type": "broadcast", "room": "h:i", "payload": 1, "id": "p1", "ref": 1}
    )
    again = await b.request(
        {"type": "broadcast", "room": "h:i", "payload": 1, "id": "p1", "ref": 2}
    )
    other = await b.request(
        {"type": "broadcast", "room": "h:i", "payload": 2, "id": "p2", "ref": 3}
    )
    assert first == {"type": "ack", "ref": 1, "delivered": 1, "offset": 1, "epoch": epoch}
    assert again == {
        "type": "ack",
        "ref": 2,
        "delivered": 0,
        "offset": 1,
        "epoch": epoch,
        "duplicate": True,
    }
    assert other["offset"] == 2
    got = [await a.recv(), await a.recv()]
    assert [m["payload"] for m in got] == [1, 2]
    assert len(manager.get_history("h:i").messages) == 2


async def test_v1_clients_in_a_history_room_keep_section_3(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    old = await open_peer(client)
    peers.append(old)
    await old.join("h:v1")
    manager.broadcast_to_room("h:v1", {"k": 1})
    assert await old.recv() == {"k": 1}
    assert manager.get_history("h:v1").offset == 1


async def test_rejoining_clients_under_a_steady_publisher_miss_nothing(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    """Clients drop and rejoin with ``since`` while messages flow: exact sequences."""
    client = await make_hub()
    rooms = [f"h:s{i}" for i in range(3)]
    clients, reconnects, total, per_room = 12, 0, 0, 100
    published: dict[str, list[int]] = {room: [] for room in rooms}
    seen: dict[int, dict[str, list[int]]] = {}
    rng = random.Random(7)

    async def publisher() -> None:
        for n in range(per_room * len(rooms)):
            room = rooms[n % len(rooms)]
            offset = manager.publish_tracked(RoomMessage(room, str(n).encode())).offset
            assert offset is not None
            published[room].append(offset)
            await asyncio.sleep(0.002)

    async def member(k: int) -> None:
        nonlocal reconnects
        room = rooms[k % len(rooms)]
        mine = seen.setdefault(k, {room: []})[room]
        peer = await v2(client, peers)
        joined = await peer.request({"type": "join", "room": room})
        epoch, first = joined["epoch"], joined["offset"]
        mine.append(first)  # the starting position, removed below
        while mine[-1] < per_room:
            if rng.random() < 0.02:
                await peer.ws.close()
                reconnects += 1
                peer = await v2(client, peers)
                since = {"offset": mine[-1], "epoch": epoch}
                joined = await peer.request({"type": "join", "room": room, "since": since})
                assert joined["recovered"] is True, joined
                continue
            msg = await peer.recv(10)
            mine.append(msg["offset"])
        del mine[0]
        assert mine == list(range(first + 1, len(published[room]) + 1))

    await asyncio.gather(publisher(), *(member(k) for k in range(clients)))
    total = sum(len(v) for s in seen.values() for v in s.values())
    print(f"{clients} clients, {reconnects} rejoins, {total} (room, offset) pairs checked")
    assert reconnects > 0
