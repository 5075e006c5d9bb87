"""A history room's read back over a broker, when the room is reset before the read starts."""

from __future__ import annotations

import asyncio

from lucent_ws.broker.backend import StreamEntry
from lucent_ws.broker.history import BrokerHistory
from lucent_ws.broker.memory import MemoryBackend, MemoryStore
from lucent_ws.broker.queue import PublishQueue
from lucent_ws.envelope import RoomMessage
from lucent_ws.policy import RoomPolicy
from lucent_ws.sequencer import Resync

from .waiting import wait_until

POLICY = RoomPolicy("r", history_size=100, history_ttl=60)


class Target:
    """The manager's side: records what a member of the room would get."""

    def __init__(self) -> None:
        self.got: list[str] = []

    def policy(self, room: str) -> RoomPolicy | None:
        return POLICY

    def local_rooms(self) -> list[str]:
        return ["r"]

    def deliver(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        self.got.append(f"{message.epoch}:{message.offset}")
        return 1

    def resync(self, resync: Resync) -> int:
        self.got.append(f"resync {resync.reason} {resync.epoch}:{resync.offset}")
        return 1


def bus(epoch: str, offset: int) -> RoomMessage:
    return RoomMessage("r", b"%d" % offset, None, offset, epoch)


async def test_a_read_asked_before_a_reset_does_not_cut_the_new_epochs_read() -> None:
    # Two epoch changes reach the node in one loop turn (Redis lost the room twice):
    # the read asked for the first must not answer for the second.
    store = MemoryStore()
    stream = store.new_stream("r", "e3", 60)
    for offset in range(1, 6):
        stream.entries.append(StreamEntry(offset, b"%d" % offset, None, (), None))
    stream.top = 5
    queue = PublishQueue(100)
    queue.open = True
    target = Target()
    history = BrokerHistory(MemoryBackend(store), "n1", queue, lambda: target)
    history.sequencer.adopt("r", "e1", 0)
    history.on_bus(bus("e2", 3), frozenset())  # reset to e2, reads 1..2
    history.on_bus(bus("e3", 5), frozenset())  # reset to e3 before that read began, reads 1..4
    await wait_until(lambda: "e3:5" in target.got, what="e3 delivered")
    await asyncio.sleep(0.05)  # any further read has answered
    await history.stop()
    print("delivered:", target.got)
    assert [g for g in target.got if not g.startswith("resync")] == [f"e3:{n}" for n in range(1, 6)]
    assert not [g for g in target.got if "gap" in g]
