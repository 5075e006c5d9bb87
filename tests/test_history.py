"""The history store's guarantees, one by one: offsets, epochs, bounds, ids, apply."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from lucent_ws.errors import ConfigurationError
from lucent_ws.history import (
    ENTRY_OVERHEAD,
    ID_OVERHEAD,
    ROOM_OVERHEAD,
    ApplyStatus,
    HistoryStore,
    Position,
)
from lucent_ws.policy import RoomPolicy

PACKAGE = Path(__file__).resolve().parent.parent / "lucent_ws"
POLICY = RoomPolicy("r*", history_size=5, history_ttl=10.0)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(max_bytes: int = 1 << 20) -> tuple[HistoryStore, Clock]:
    clock = Clock()
    counter = itertools.count(1)
    return HistoryStore(max_bytes, clock=clock, new_epoch=lambda: f"e{next(counter)}"), clock


def offsets(store: HistoryStore, room: str) -> list[int]:
    return [entry.offset for entry in store.since(room)]


@pytest.mark.parametrize("module", ["history.py", "ring.py", "recovery.py"])
def test_the_history_core_is_pure(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    names = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    names |= {
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0
    }
    assert not {name.split(".")[0] for name in names} & {"aiohttp", "asyncio", "socket", "redis"}
    assert len((PACKAGE / module).read_text().splitlines()) <= 400


def test_offsets_are_contiguous_from_one_per_room_and_the_epoch_is_stable() -> None:
    store, _ = make_store()
    got = [store.append("r1", POLICY, b"x").offset for _ in range(3)]
    got += [store.append("r2", POLICY, b"y").offset for _ in range(2)]
    got.append(store.append("r1", POLICY, b"x").offset)
    assert got == [1, 2, 3, 1, 2, 4]
    assert store.position("r1", POLICY) == Position("e1", 4)
    assert store.position("r2", POLICY) == Position("e2", 2)


def test_a_room_keeps_its_newest_history_size_entries() -> None:
    store, _ = make_store()
    for i in range(1, 9):
        store.append("r1", POLICY, b"m%d" % i)
    assert offsets(store, "r1") == [4, 5, 6, 7, 8]
    assert [e.data for e in store.since("r1", 6)] == [b"m7", b"m8"]
    assert [e.offset for e in store.since("r1", 0, limit=2)] == [4, 5]
    assert [e.offset for e in store.latest("r1", 2)] == [7, 8]
    assert [e.offset for e in store.since("r1", 6, epoch="other")] == [4, 5, 6, 7, 8]
    assert store.since("nowhere") == []
    stats = store.stats()
    assert (stats.rooms, stats.entries, stats.bytes) == (1, 5, 10)
    assert stats.charged == ROOM_OVERHEAD + 10 + 5 * ENTRY_OVERHEAD


def test_entries_expire_after_the_ttl_and_an_idle_room_is_forgotten() -> None:
    store, clock = make_store()
    store.append("r1", POLICY, b"a")
    clock.now += 6
    store.append("r1", POLICY, b"b")
    clock.now += 4  # the first entry is exactly 10 s old: gone
    assert offsets(store, "r1") == [2]
    assert store.position("r1", POLICY) == Position("e1", 2)
    clock.now += 5.99
    assert offsets(store, "r1") == [2]
    clock.now += 0.01
    assert store.since("r1") == []
    assert "r1" not in store
    assert store.stats()[:4] == (0, 0, 0, 0)  # rooms, entries, bytes, charged
    assert store.expired == 2
    # A forgotten room starts afresh: a new epoch, offsets from 1 again.
    assert store.append("r1", POLICY, b"c")[:2] == (1, "e2")


def test_a_position_alone_is_forgotten_after_the_ttl() -> None:
    store, clock = make_store()
    assert store.position("r1", POLICY) == Position("e1", 0)
    clock.now += 9
    assert store.position("r1", POLICY) == Position("e1", 0)
    clock.now += 1
    assert "r1" not in store
    assert store.position("r1", POLICY) == Position("e2", 0)


def test_a_repeated_publish_id_is_published_once_within_the_window() -> None:
    store, clock = make_store()
    first = store.append("r1", POLICY, b"a", "id-1")
    store.append("r1", POLICY, b"b", "id-2")
    again = store.append("r1", POLICY, b"a", "id-1")
    assert (first.offset, first.duplicate) == (1, False)
    assert (again.offset, again.epoch, again.duplicate) == (1, "e1", True)
    assert offsets(store, "r1") == [1, 2]
    assert store.append("r2", POLICY, b"a", "id-1").duplicate is False  # ids are per room
    assert store.since("r1")[0].publish_id == "id-1"
    assert store.stats().charged == 2 * ROOM_OVERHEAD + 3 * (1 + ENTRY_OVERHEAD + 4 + ID_OVERHEAD)
    # Once its entry leaves the ring (size here), the id is new again.
    for _ in range(5):
        store.append("r1", POLICY, b"c")
    assert store.append("r1", POLICY, b"a", "id-1")[::2] == (8, False)
    clock.now += 10
    assert store.append("r1", POLICY, b"a", "id-1").duplicate is False


def test_the_byte_cap_evicts_the_oldest_entries_of_any_room() -> None:
    cost = 100 + ENTRY_OVERHEAD
    store, _ = make_store(max_bytes=3 * ROOM_OVERHEAD + 4 * cost)
    store.append("r1", POLICY, b"1" * 100)
    store.append("r2", POLICY, b"2" * 100)
    store.append("r1", POLICY, b"3" * 100)
    store.append("r3", POLICY, b"4" * 100)
    assert store.stats().charged == store.max_bytes
    store.append("r2", POLICY, b"5" * 100)  # over the cap: r1's first goes
    assert (offsets(store, "r1"), offsets(store, "r2"), offsets(store, "r3")) == (
        [2],
        [1, 2],
        [1],
    )
    store.append("r3", POLICY, b"6" * 300)  # costs three: r2's first, r1's, r3's first
    assert (offsets(store, "r1"), offsets(store, "r2"), offsets(store, "r3")) == ([], [2], [2])
    assert store.stats().charged <= store.max_bytes
    assert store.evicted == 4
    # An evicted room keeps its position (until its TTL): offsets go on, same epoch.
    assert store.append("r1", POLICY, b"7")[:2] == (3, "e1")


def test_an_entry_larger_than_the_cap_is_numbered_but_not_kept() -> None:
    store, _ = make_store(max_bytes=ROOM_OVERHEAD + 200)
    assert store.append("r1", POLICY, b"x" * 500).offset == 1
    assert store.stats()[1:4] == (0, 0, ROOM_OVERHEAD)  # entries, bytes, charged
    assert offsets(store, "r1") == []
    assert store.position("r1", POLICY) == Position("e1", 1)


def test_a_policy_change_applies_at_once() -> None:
    store, clock = make_store()
    for _ in range(5):
        store.append("r1", POLICY, b"x")
        clock.now += 1
    smaller = RoomPolicy("r*", history_size=2, history_ttl=3.0)
    assert store.position("r1", smaller).offset == 5
    assert offsets(store, "r1") == [4, 5]
    clock.now += 1.5  # entry 4 is 3.5 s old, entry 5 is 2.5 s old
    assert offsets(store, "r1") == [5]
    clock.now += 1
    assert store.position("r1", smaller) == Position("e2", 0)  # idle 3.5 s: forgotten


def test_rooms_without_history_are_refused() -> None:
    store, _ = make_store()
    with pytest.raises(ConfigurationError):
        store.append("r1", RoomPolicy("r*"), b"x")
    with pytest.raises(ConfigurationError):
        store.position("r1", RoomPolicy("r*"))
    with pytest.raises(ConfigurationError):
        HistoryStore(0)


def test_apply_stores_offsets_assigned_elsewhere_and_reports_gaps() -> None:
    store, _ = make_store()
    started = store.apply("r1", POLICY, 41, "s1", b"a")
    assert (started.status, started.position) == (ApplyStatus.STARTED, Position("s1", 41))
    assert store.apply("r1", POLICY, 42, "s1", b"b").status is ApplyStatus.APPLIED
    assert store.apply("r1", POLICY, 42, "s1", b"b").status is ApplyStatus.DUPLICATE
    gap = store.apply("r1", POLICY, 45, "s1", b"e")
    assert (gap.status, gap.missing, gap.position) == (ApplyStatus.GAP, (43, 44), ("s1", 42))
    assert offsets(store, "r1") == [41, 42]  # nothing stored past a gap
    for offset in (43, 44, 45):  # the caller fills it, in order
        assert store.apply("r1", POLICY, offset, "s1", b"f").status is ApplyStatus.APPLIED
    assert offsets(store, "r1") == [41, 42, 43, 44, 45]
    changed = store.apply("r1", POLICY, 1, "s2", b"n")
    assert (changed.status, changed.position) == (ApplyStatus.EPOCH_CHANGED, Position("s2", 1))
    assert offsets(store, "r1") == [1]
    assert store.stats().entries == 1
    # A gap that cannot be filled: reset to the stream's position, then go on from there.
    store.reset("r1", POLICY, "s2", 9)
    assert (store.since("r1"), store.position("r1", POLICY)) == ([], Position("s2", 9))
    assert store.apply("r1", POLICY, 10, "s2", b"k").status is ApplyStatus.APPLIED
    with pytest.raises(ValueError, match="offsets start at 1"):
        store.apply("r1", POLICY, 0, "s2", b"k")


def test_the_fifo_of_a_busy_store_stays_bounded() -> None:
    """Entries dropped by the ring bound leave stale FIFO references; they are compacted."""
    store, clock = make_store(max_bytes=1 << 30)
    old = RoomPolicy("old", history_size=1, history_ttl=1e6)
    store.append("old", old, b"o")  # the oldest entry pins the FIFO's front
    tiny = RoomPolicy("r*", history_size=1, history_ttl=1e6)
    longest = 0
    for i in range(50_000):
        store.append(f"r{i % 10}", tiny, b"x")
        longest = max(longest, len(store._fifo))
        clock.now += 0.001
    entries = store.stats().entries
    print(f"\nFIFO: {longest} references at most for {entries} entries, 50,000 appends")
    assert entries == 11
    assert longest <= 2 * entries + 4096 + 1
    assert offsets(store, "old") == [1]
