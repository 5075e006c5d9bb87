"""The history store against a plain model, under random operations (hypothesis).

The model keeps every entry in plain lists and applies the bounds eagerly by full
scans; the store must answer exactly the same after every step, keep its byte cap,
and never hand out an offset twice within an epoch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lucent_ws.history import (
    ENTRY_OVERHEAD,
    ID_OVERHEAD,
    ROOM_OVERHEAD,
    ApplyStatus,
    HistoryStore,
)
from lucent_ws.policy import RoomPolicy
from lucent_ws.recovery import RecoveryReason

MAX_BYTES = 3 * ROOM_OVERHEAD + 1500  # three rooms at most, 1,500 bytes of entries
POLICIES = {
    "a": RoomPolicy("a", history_size=3, history_ttl=5.0),
    "b": RoomPolicy("b", history_size=6, history_ttl=2.0),
    "c": RoomPolicy("c", history_size=10, history_ttl=8.0),
}
ROOMS = st.sampled_from(sorted(POLICIES))
DATA = st.binary(max_size=40) | st.binary(min_size=100, max_size=300)
IDS = st.none() | st.sampled_from(["p", "q", "r", "s"])

FIGURES = {"steps": 0, "appends": 0, "duplicates": 0, "evicted": 0, "expired": 0, "max": 0}
FIGURES |= {"recovered": 0, "applied": 0, "gaps": 0}
REASONS: dict[str, int] = {}


def cost(data: bytes, pid: str | None) -> int:
    return len(data) + ENTRY_OVERHEAD + (len(pid) + ID_OVERHEAD if pid is not None else 0)


@dataclass
class Room:
    epoch: str
    top: int
    last: float
    entries: list[tuple[int, bytes, float, str | None, int]] = field(default_factory=list)
    """(offset, data, time, publish id, global sequence) oldest first."""


class HistoryModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        counter = itertools.count(1)
        self.store = HistoryStore(
            MAX_BYTES, clock=lambda: self.now, new_epoch=lambda: f"e{next(counter)}"
        )
        self.epochs = itertools.count(1)
        self.foreign = itertools.count(1)
        self.rooms: dict[str, Room] = {}
        self.seq = itertools.count()
        self.given: set[tuple[str, int]] = set()

    # -- the model -----------------------------------------------------------

    def expire(self) -> None:
        for name, room in list(self.rooms.items()):
            ttl = POLICIES[name].history_ttl
            room.entries = [e for e in room.entries if e[2] + ttl > self.now]
            if not room.entries and room.last + ttl <= self.now:
                del self.rooms[name]

    def room(self, name: str) -> Room:
        if name not in self.rooms:
            self.rooms[name] = Room(f"e{next(self.epochs)}", 0, self.now)
            self.evict()  # a new room is charged too: the oldest entries make way
        return self.rooms[name]

    def charged(self) -> int:
        entries = sum(cost(e[1], e[3]) for r in self.rooms.values() for e in r.entries)
        return entries + ROOM_OVERHEAD * len(self.rooms)

    def keep(self, name: str, room: Room, data: bytes, pid: str | None) -> None:
        room.entries.append((room.top, data, self.now, pid, next(self.seq)))
        room.last = self.now
        del room.entries[: max(0, len(room.entries) - POLICIES[name].history_size)]
        self.evict()

    def evict(self) -> None:
        while self.charged() > MAX_BYTES and any(r.entries for r in self.rooms.values()):
            oldest = min(
                (r for r in self.rooms.values() if r.entries), key=lambda r: r.entries[0][4]
            )
            oldest.entries.pop(0)

    # -- rules -----------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 0.25, 1.0, 2.0, 4.9, 5.0, 9.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(name=ROOMS, data=DATA, pid=IDS)
    def append(self, name: str, data: bytes, pid: str | None) -> None:
        self.expire()
        got = self.store.append(name, POLICIES[name], data, pid)
        room = self.room(name)
        held = {e[3]: e[0] for e in room.entries if e[3] is not None}
        if pid is not None and pid in held:
            assert got == (held[pid], room.epoch, True)
            FIGURES["duplicates"] += 1
            return
        room.top += 1
        assert got == (room.top, room.epoch, False)
        assert (got.epoch, got.offset) not in self.given, "an offset was given twice"
        self.given.add((got.epoch, got.offset))
        self.keep(name, room, data, pid)
        FIGURES["appends"] += 1

    @rule(name=ROOMS, ahead=st.integers(1, 3), data=DATA, same_epoch=st.booleans())
    def apply(self, name: str, ahead: int, data: bytes, same_epoch: bool) -> None:
        self.expire()
        room = self.rooms.get(name)
        epoch = room.epoch if room is not None and same_epoch else f"x{next(self.foreign)}"
        offset = (room.top if room is not None and same_epoch else 0) + ahead
        got = self.store.apply(name, POLICIES[name], offset, epoch, data)
        if room is not None and room.epoch == epoch and offset > room.top + 1:
            assert (got.status, got.missing) == (ApplyStatus.GAP, (room.top + 1, offset - 1))
            FIGURES["gaps"] += 1
            return
        if room is None or room.epoch != epoch:
            room = self.rooms[name] = Room(epoch, offset - 1, self.now)
        room.top = offset
        self.keep(name, room, data, None)
        assert got.position == (epoch, offset)
        FIGURES["applied"] += 1

    @rule(
        name=ROOMS,
        back=st.integers(0, 12),
        stale=st.booleans(),
        cap=st.integers(0, 8),
        limit=st.sampled_from([20, 600]),
    )
    def recover(self, name: str, back: int, stale: bool, cap: int, limit: int) -> None:
        self.expire()
        room = self.room(name)
        since = room.top - back
        epoch = "old" if stale else room.epoch
        got = self.store.recover(name, POLICIES[name], since, epoch, cap, limit)
        assert got.position == (room.epoch, room.top)
        kept = [e for e in room.entries if e[0] > since]
        if stale:
            reason: RecoveryReason | None = RecoveryReason.EPOCH_CHANGED
        elif since < 0:
            reason = RecoveryReason.AHEAD
        elif len(kept) < back:
            reason = RecoveryReason.TOO_OLD
        elif back > cap:
            reason = RecoveryReason.TOO_MANY
        elif sum(len(e[1]) for e in kept) > limit:
            reason = RecoveryReason.TOO_LARGE
        else:
            reason = None
        assert got.reason == reason
        assert got.recovered is (reason is None)
        if got.recovered:
            assert [(e.offset, e.data) for e in got.entries] == [(e[0], e[1]) for e in kept]
            assert [e.offset for e in got.entries] == list(range(since + 1, room.top + 1))
            FIGURES["recovered"] += 1
        else:
            assert got.entries == ()
            REASONS[str(reason)] = REASONS.get(str(reason), 0) + 1

    @rule(name=ROOMS, back=st.integers(-2, 12), limit=st.none() | st.integers(0, 4))
    def read(self, name: str, back: int, limit: int | None) -> None:
        self.expire()
        room = self.rooms.get(name)
        kept = room.entries if room is not None else []
        since = (room.top if room is not None else 0) - back
        want = [e[0] for e in kept if e[0] > since][:limit]
        assert [e.offset for e in self.store.since(name, since, limit=limit)] == want
        newest = [e[0] for e in kept][-limit:] if limit else []
        assert [e.offset for e in self.store.latest(name, limit or 0)] == newest

    @precondition(lambda self: bool(self.rooms))
    @rule(data=st.data())
    def reset(self, data: st.DataObject) -> None:
        self.expire()
        name = data.draw(st.sampled_from(sorted(self.rooms)))
        room = self.rooms[name]
        self.store.reset(name, POLICIES[name], room.epoch, room.top + 2)
        self.rooms[name] = Room(room.epoch, room.top + 2, self.now)

    # -- what must hold after every step -------------------------------------

    @invariant()
    def same_as_the_model(self) -> None:
        self.expire()
        store = self.store
        FIGURES["steps"] += 1
        stats = store.stats()
        FIGURES["max"] = max(FIGURES["max"], stats.charged)
        assert stats.charged <= MAX_BYTES
        assert stats.charged == self.charged()
        assert stats.bytes == sum(len(e[1]) for r in self.rooms.values() for e in r.entries)
        assert stats.entries == sum(len(r.entries) for r in self.rooms.values())
        assert stats.rooms == len(self.rooms)
        for name, room in self.rooms.items():
            got = store.since(name)
            assert [(e.offset, e.data, e.publish_id) for e in got] == [
                (e[0], e[1], e[3]) for e in room.entries
            ]
            offsets = [e.offset for e in got]
            assert offsets == list(range(room.top - len(got) + 1, room.top + 1))

    def teardown(self) -> None:
        FIGURES["evicted"] += self.store.evicted
        FIGURES["expired"] += self.store.expired


def test_the_store_matches_the_model() -> None:
    run_state_machine_as_test(
        HistoryModel,
        settings=settings(
            max_examples=300,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"\nhistory model: {FIGURES}, failed recoveries by reason: {REASONS}")
    print(f"byte cap {MAX_BYTES}: at most {FIGURES['max']} charged after any step")
    assert FIGURES["evicted"] > 0
    assert FIGURES["expired"] > 0
    assert FIGURES["duplicates"] > 0
    assert FIGURES["recovered"] > 0
    assert FIGURES["gaps"] > 0
    assert len(REASONS) >= 3  # each reason has its own unit test in test_recovery.py
