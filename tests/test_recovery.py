"""Recovery is all-or-nothing with the right reason; the replay merger sends each offset once."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from lucent_ws.history import ENTRY_OVERHEAD, ROOM_OVERHEAD, HistoryStore, Position
from lucent_ws.policy import RoomPolicy
from lucent_ws.recovery import RecoveryReason
from lucent_ws.resume import ReplayMerger

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


# -- the replay merger -----------------------------------------------------------------


def frame(offset: int) -> bytes:
    return b"%d" % offset


def test_live_messages_during_the_replay_are_held_then_merged() -> None:
    merger = ReplayMerger(4)
    assert merger.on_live(8, frame(8)) == []
    assert merger.on_live(7, frame(7)) == []
    assert merger.replay([(5, frame(5)), (6, frame(6)), (7, frame(7))]) == [b"5", b"6", b"7", b"8"]
    assert merger.on_live(9, frame(9)) == []  # still replaying: held
    assert merger.finish() == [b"9"]
    assert merger.on_live(9, frame(9)) == []  # already sent
    assert merger.on_live(10, frame(10)) == [b"10"]
    assert (merger.delivered, merger.dropped, merger.held, merger.last) == (6, 2, 0, 10)


def test_a_hole_shows_as_a_gap_until_filled_or_skipped() -> None:
    merger = ReplayMerger(0)
    assert merger.replay([(1, b"1"), (2, b"2")]) == [b"1", b"2"]
    assert merger.on_live(5, b"5") == []
    assert merger.finish() == []
    assert merger.gap == (3, 4)
    assert merger.replay([(3, b"3"), (4, b"4")]) == [b"3", b"4", b"5"]
    assert merger.gap is None
    assert merger.on_live(8, b"8") == []
    assert merger.gap == (6, 7)
    assert merger.skip_gap() == [b"8"]
    assert (merger.last, merger.gap) == (8, None)


def test_held_bytes_are_bounded() -> None:
    merger = ReplayMerger(0, max_held_bytes=10)
    assert merger.on_live(1, b"x" * 6) == []
    assert not merger.overflowed
    assert merger.on_live(2, b"y" * 6) == []
    assert merger.overflowed
    assert merger.held_bytes == 6


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[int, int, list[tuple[str, int]]]:
    """A replay of since+1..top and live messages from some offset on, in any interleaving.

    Live messages start at or before the end of the replay (they were published during
    it), may repeat and arrive out of order: what a merger must survive. Consecutive
    replay entries form one ``replay`` call (a page).
    """
    since = draw(st.integers(0, 50))
    top = since + draw(st.integers(0, 40))
    end = top + draw(st.integers(0, 30))
    live_from = draw(st.integers(since + 1, top + 1))
    live = list(range(live_from, end + 1))
    live += draw(st.lists(st.sampled_from(live), max_size=10)) if live else []  # repeats
    live = draw(st.permutations(live)) if draw(st.booleans()) else live
    pages = list(range(since + 1, top + 1))
    order = draw(st.permutations([True] * len(pages) + [False] * len(live)))
    replayed, arrived = iter(pages), iter(live)
    stream = [("page", next(replayed)) if p else ("live", next(arrived)) for p in order]
    return since, end, stream


MERGED = {"cases": 0, "sent": 0, "dropped": 0, "held_at_most": 0}


@settings(max_examples=400, deadline=None)
@given(case=interleavings())
def test_the_merger_sends_each_offset_once_in_order(
    case: tuple[int, int, list[tuple[str, int]]],
) -> None:
    since, end, stream = case
    merger = ReplayMerger(since)
    last_page = max((i for i, (kind, _) in enumerate(stream) if kind == "page"), default=-1)
    sent: list[bytes] = []
    page: list[tuple[int, bytes]] = []
    if last_page < 0:
        sent += merger.finish()  # nothing to replay
    for i, (kind, offset) in enumerate(stream):
        if kind == "page":
            page.append((offset, frame(offset)))
            if i == last_page:
                sent += merger.replay(page)
                sent += merger.finish()
                page = []
            continue
        if page:
            sent += merger.replay(page)
            page = []
        sent += merger.on_live(offset, frame(offset))
        MERGED["held_at_most"] = max(MERGED["held_at_most"], merger.held)
    assert sent == [frame(o) for o in range(since + 1, end + 1)]
    assert merger.gap is None
    assert merger.held == 0
    assert merger.delivered == len(sent)
    MERGED["cases"] += 1
    MERGED["sent"] += len(sent)
    MERGED["dropped"] += merger.dropped


def test_the_merger_figures() -> None:
    test_the_merger_sends_each_offset_once_in_order()
    print(
        f"\nmerger: {MERGED['cases']} interleavings, {MERGED['sent']} offsets sent exactly "
        f"once in order, {MERGED['dropped']} duplicates dropped, "
        f"{MERGED['held_at_most']} held at most"
    )
    assert MERGED["dropped"] > 0
    assert MERGED["held_at_most"] > 0
