"""The broker's tick over history rooms: quiet rooms forgotten, failed read-backs retried.

Every node follows every history room it sees on the bus: without forgetting,
a node's per-room state grows with every history room the cluster ever
published to (a room per chat, per user), members or not. And messages held
while a read back failed must not wait for the room's next message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lucent_ws import WebSocketManager, jsoncodec
from lucent_ws.broker.memory import MemoryBroker, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.envelope import V2, RoomMessage
from lucent_ws.policy import RoomPolicy
from lucent_ws.session import Session

from ..fakes import fake_connect
from ..waiting import wait_until

POLICIES = [RoomPolicy("h:*", history_size=100, history_ttl=60)]
ROOMS = 300


@pytest.fixture
async def nodes() -> AsyncIterator[list[tuple[WebSocketManager, MemoryBroker]]]:
    store = MemoryStore()
    made: list[tuple[WebSocketManager, MemoryBroker]] = []
    for _ in range(2):
        manager = WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES)
        broker = MemoryBroker(store, lease=0.6)  # a tick every 0.2 s
        broker.history.idle = 0.3
        await broker.start(manager)
        await broker.wait_until_up()
        made.append((manager, broker))
    yield made
    for _, broker in made:
        await broker.stop()


async def test_quiet_rooms_without_local_members_are_forgotten(
    nodes: list[tuple[WebSocketManager, MemoryBroker]],
) -> None:
    (a, _), (b, b_broker) = nodes
    conn, transport = fake_connect(b, version=V2)
    session = Session(b, conn, Limits())
    await session.on_text('{"type":"join","room":"h:kept","ref":1}')
    for i in range(ROOMS):
        await a.publish_confirmed(RoomMessage(f"h:{i}", jsoncodec.dumps(i)))
    await a.publish_confirmed(RoomMessage("h:kept", b'"k1"'))
    rooms = b_broker.history.sequencer.rooms
    await wait_until(lambda: len(rooms) == ROOMS + 1, what="b sequences every room")
    followed = len(rooms)
    await wait_until(lambda: len(rooms) == 1, timeout=5.0, what="quiet rooms forgotten")
    print("rooms followed on the node without members:", followed, "after going quiet:", 1)
    assert list(rooms) == ["h:kept"]  # the room with a member here stays

    # A forgotten room is followed afresh: a join there sees its top, the next message follows.
    await a.publish_confirmed(RoomMessage("h:kept", b'"k2"'))
    await session.on_text('{"type":"join","room":"h:7","ref":2}')
    await wait_until(lambda: any(m.get("ref") == 2 for m in transport.messages()))
    joined = next(m for m in transport.messages() if m.get("ref") == 2)
    assert joined["offset"] == 1
    await a.publish_confirmed(RoomMessage("h:7", b'"n"'))
    await wait_until(
        lambda: sum(1 for m in transport.messages() if m.get("type") == "message") == 3
    )
    got = [(m["room"], m["offset"]) for m in transport.messages() if m.get("type") == "message"]
    print("client on b got", got)
    assert got == [("h:kept", 1), ("h:kept", 2), ("h:7", 2)]


async def test_messages_held_by_a_failed_read_are_delivered_without_another_message(
    nodes: list[tuple[WebSocketManager, MemoryBroker]],
) -> None:
    # Node b misses offset 1 on the bus, holds 2 and reads 1 back; that read fails
    # (Redis too slow to answer) while the broker stays up. No later message comes.
    (a, a_broker), (b, b_broker) = nodes
    conn, transport = fake_connect(b, version=V2)
    session = Session(b, conn, Limits())
    await session.on_text('{"type":"join","room":"h:q","ref":1}')
    backend = b_broker.backend
    real_read = backend.read
    failed = 0

    async def read_failing_once(*args: object, **kwargs: object) -> object:
        nonlocal failed
        if failed == 0:
            failed += 1
            raise ConnectionError("read timed out")
        return await real_read(*args, **kwargs)  # type: ignore[arg-type]

    backend.read = read_failing_once  # type: ignore[method-assign, assignment]
    a_broker.store.drop_history_messages = 1
    await a.publish_confirmed(RoomMessage("h:q", b'"one"'))
    await a.publish_confirmed(RoomMessage("h:q", b'"two"'))

    def offsets() -> list[int]:
        return [m["offset"] for m in transport.messages() if m.get("type") == "message"]

    await wait_until(lambda: failed == 1, what="the read back failed")
    await wait_until(lambda: len(offsets()) == 2, timeout=5.0, what="both delivered")
    print("delivered after the failed read:", offsets())
    assert offsets() == [1, 2]
