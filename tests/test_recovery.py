"""Recovery is all-or-nothing with the right reason."""

from __future__ import annotations

import itertools

from lucent_ws.history import ENTRY_OVERHEAD, ROOM_OVERHEAD, HistoryStore, Position
from lucent_ws.policy import RoomPolicy
from lucent_ws.recovery import RecoveryReason

POLICY = RoomPolicy("r*", history_size=10, history_ttl=60.0)


def store_with(messages: int, *, max_bytes: int = 1 << 20) -> HistoryStore:
    now = [0.0]
    counter = itertools.count(1)
    store = HistoryStore(max_bytes, clock=lambda: now[0], new_epoch=lambda: f"e{next(counter)}")
    for i in range(1, messages + 1):
        store.append("r1", POLICY, b"m%02d" % i)
    return store


# -- recover ---------------------------------------------------------------------------


def test_recovery_answers_every_missed_entry_in_order() -> None:
    store = store_with(12)  # keeps 3..12
    got = store.recover("r1", POLICY, 4, "e1", max_messages=300, max_bytes=10_000)
    assert (got.recovered, got.missed, got.reason) == (True, 8, None)
    assert [e.offset for e in got.entries] == list(range(5, 13))
    assert [e.data for e in got.entries][:2] == [b"m05", b"m06"]
    assert (got.epoch, got.offset) == ("e1", 12)


def test_recovery_with_nothing_missed_is_recovered_and_empty() -> None:
    got = store_with(3).recover("r1", POLICY, 3, "e1", 0, 0)
    assert (got.recovered, got.missed, got.entries, got.position) == (True, 0, (), ("e1", 3))


def test_each_failure_answers_its_reason_and_no_entry() -> None:
    store = store_with(12)  # keeps 3..12, 3 bytes each
    cases = {
        RecoveryReason.EPOCH_CHANGED: store.recover("r1", POLICY, 10, "e0", 300, 10_000),
        RecoveryReason.AHEAD: store.recover("r1", POLICY, 13, "e1", 300, 10_000),
        RecoveryReason.TOO_OLD: store.recover("r1", POLICY, 1, "e1", 300, 10_000),
        RecoveryReason.TOO_MANY: store.recover("r1", POLICY, 5, "e1", 6, 10_000),
        RecoveryReason.TOO_LARGE: store.recover("r1", POLICY, 5, "e1", 300, 20),
    }
    for reason, got in cases.items():
        assert (got.recovered, got.reason, got.entries) == (False, reason, ()), reason
        assert got.position == Position("e1", 12)
    assert cases[RecoveryReason.TOO_OLD].missed == 11
    assert cases[RecoveryReason.TOO_MANY].missed == 7
    assert cases[RecoveryReason.EPOCH_CHANGED].missed == 0
    # The limits are inclusive: exactly max_messages, exactly max_bytes recover.
    assert store.recover("r1", POLICY, 2, "e1", 10, 30).recovered
    assert not store.recover("r1", POLICY, 2, "e1", 9, 30).recovered
    assert not store.recover("r1", POLICY, 2, "e1", 10, 29).recovered


def test_recovery_in_an_unknown_room_starts_an_epoch_the_client_keeps() -> None:
    store = store_with(0)
    got = store.recover("r9", POLICY, 5, "e-before-restart", 300, 10_000)
    assert (got.recovered, got.reason, got.position) == (
        False,
        RecoveryReason.EPOCH_CHANGED,
        Position("e1", 0),
    )
    assert store.append("r9", POLICY, b"x")[:2] == (1, "e1")  # the epoch the client was given


def test_recovery_after_the_byte_cap_evicted_the_missed_entries_is_too_old() -> None:
    store = store_with(10, max_bytes=ROOM_OVERHEAD + 5 * (3 + ENTRY_OVERHEAD))
    assert [e.offset for e in store.since("r1")] == [6, 7, 8, 9, 10]
    assert store.recover("r1", POLICY, 5, "e1", 300, 10_000).recovered
    assert store.recover("r1", POLICY, 4, "e1", 300, 10_000).reason is RecoveryReason.TOO_OLD
