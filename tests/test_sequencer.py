"""The per-room sequencer of history rooms over a broker, without a server."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lucent_ws.envelope import RoomMessage
from lucent_ws.sequencer import EPOCH_CHANGED, GAP, Delivery, Resync, Sequencer, Step

NONE: frozenset[str] = frozenset()


def msg(offset: int, epoch: str = "e1", room: str = "r") -> RoomMessage:
    return RoomMessage(room, str(offset).encode(), None, offset, epoch)


def delivered(step: Step) -> list[int]:
    return [a.message.offset or 0 for a in step.actions if isinstance(a, Delivery)]


def resyncs(step: Step) -> list[Resync]:
    return [a for a in step.actions if isinstance(a, Resync)]


def test_in_order_delivers_and_repeats_are_dropped() -> None:
    seq = Sequencer()
    out: list[int] = []
    for offset in (1, 2, 2, 3, 1, 4):
        step = seq.offer(msg(offset), NONE)
        assert step.fill is None
        assert not resyncs(step)
        out += delivered(step)
    print("delivered", out, "dropped", seq.dropped)
    assert out == [1, 2, 3, 4]
    assert seq.dropped == 2
    assert seq.position("r") == ("e1", 4)


def test_a_gap_is_held_and_filled_in_order() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 0)
    assert delivered(seq.offer(msg(1), NONE)) == [1]
    step = seq.offer(msg(4), NONE)
    assert delivered(step) == []
    assert step.fill == (2, 3)
    gen = seq.generation("r")
    assert seq.offer(msg(5), NONE) == Step([])  # held too, one read in flight
    filled = seq.filled("r", gen, "e1", 5, [Delivery(msg(2), NONE), Delivery(msg(3), NONE)])
    print("after the fill", delivered(filled))
    assert delivered(filled) == [2, 3, 4, 5]
    assert not resyncs(filled)
    assert filled.fill is None
    assert seq.filled_count == 2
    assert delivered(seq.offer(msg(3), NONE)) == []  # the bus copy arrives late: dropped


def test_a_gap_the_stream_no_longer_has_is_one_resync() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 3)
    step = seq.offer(msg(8), NONE)
    assert step.fill == (4, 7)
    # The stream kept 6 and 7 only (4 and 5 were trimmed).
    filled = seq.filled(
        "r", seq.generation("r"), "e1", 8, [Delivery(msg(6), NONE), Delivery(msg(7), NONE)]
    )
    assert filled.actions[0] == Resync("r", GAP, "e1", 5)
    assert delivered(filled) == [6, 7, 8]
    assert len(resyncs(filled)) == 1


def test_a_gap_larger_than_max_fill_resyncs_without_reading() -> None:
    seq = Sequencer(max_fill=10)
    seq.adopt("r", "e1", 0)
    step = seq.offer(msg(50), NONE)
    assert step.fill is None
    assert resyncs(step) == [Resync("r", GAP, "e1", 49)]
    assert delivered(step) == [50]


def test_another_epoch_is_one_resync_then_the_new_epoch() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 7)
    step = seq.offer(msg(1, "e2"), NONE)
    assert resyncs(step) == [Resync("r", EPOCH_CHANGED, "e2", 0)]
    assert delivered(step) == [1]
    assert resyncs(seq.offer(msg(2, "e2"), NONE)) == []
    # A late message of the old epoch never flips it back.
    assert seq.offer(msg(8, "e1"), NONE) == Step([])
    assert seq.position("r") == ("e2", 2)
    assert seq.resyncs == 1


def test_the_position_check_after_a_blip() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 2)
    assert seq.checked("r", "e1", 2) == Step([])
    step = seq.checked("r", "e1", 4)
    assert step.fill == (3, 4)
    filled = seq.filled(
        "r", seq.generation("r"), "e1", 4, [Delivery(msg(3), NONE), Delivery(msg(4), NONE)]
    )
    assert delivered(filled) == [3, 4]
    lost = seq.checked("r", "e9", 0)
    assert resyncs(lost) == [Resync("r", EPOCH_CHANGED, "e9", 0)]
    # A fill begun before the reset is ignored.
    assert seq.filled("r", 0, "e1", 4, [Delivery(msg(5), NONE)]) == Step([])
    assert seq.position("r") == ("e9", 0)


def test_a_read_that_finds_another_epoch_resyncs() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 1)
    assert seq.offer(msg(3), NONE).fill == (2, 2)
    step = seq.filled("r", seq.generation("r"), "e2", 0, [])
    assert resyncs(step) == [Resync("r", EPOCH_CHANGED, "e2", 0)]
    assert delivered(step) == []
    assert seq.position("r") == ("e2", 0)


def test_a_new_epoch_seen_late_starts_at_its_first_offset() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 9)
    step = seq.offer(msg(3, "e2"), NONE)
    assert resyncs(step) == [Resync("r", EPOCH_CHANGED, "e2", 0)]
    assert step.fill == (1, 2)
    filled = seq.filled(
        "r",
        seq.generation("r"),
        "e2",
        3,
        [Delivery(msg(1, "e2"), NONE), Delivery(msg(2, "e2"), NONE)],
    )
    assert delivered(filled) == [1, 2, 3]
    assert resyncs(filled) == []
    check = seq.checked("r", "e3", 2)
    assert resyncs(check) == [Resync("r", EPOCH_CHANGED, "e3", 0)]
    assert check.fill == (1, 2)


def test_a_position_check_during_a_fill_is_caught_up_after_it() -> None:
    seq = Sequencer()
    seq.adopt("r", "e1", 0)
    assert seq.offer(msg(3), NONE).fill == (1, 2)
    assert seq.checked("r", "e1", 6) == Step([])  # a read is in flight
    gen = seq.generation("r")
    step = seq.filled("r", gen, "e1", 6, [Delivery(msg(1), NONE), Delivery(msg(2), NONE)])
    assert delivered(step) == [1, 2, 3]
    assert resyncs(step) == []  # 4..6 were not read yet: not lost
    assert step.fill == (4, 6)
    last = seq.filled(
        "r", gen, "e1", 6, [Delivery(msg(4), NONE), Delivery(msg(5), NONE), Delivery(msg(6), NONE)]
    )
    assert delivered(last) == [4, 5, 6]


@st.composite
def lossy_buses(draw: st.DrawFn) -> tuple[int, list[int], list[int]]:
    """N messages; the offsets the bus still carries (in order); when each fill is served."""
    total = draw(st.integers(1, 40))
    kept = [o for o in range(1, total + 1) if draw(st.booleans()) or o == total]
    delays = draw(st.lists(st.integers(0, 5), min_size=total, max_size=total))
    return total, kept, delays


@given(lossy_buses())
@settings(max_examples=300, deadline=None)
def test_every_offset_once_in_order_whatever_the_bus_lost(
    case: tuple[int, list[int], list[int]],
) -> None:
    total, kept, delays = case
    seq = Sequencer()
    seq.adopt("r", "e1", 0)
    out: list[int] = []
    pending: list[tuple[int, int, tuple[int, int]]] = []  # (due, generation, (first, last))

    def run(step: Step, now: int) -> None:
        assert not resyncs(step)
        out.extend(delivered(step))
        if step.fill is not None:
            pending.append((now + delays[now % total], seq.generation("r"), step.fill))

    def serve(now: int) -> None:
        for item in [p for p in pending if p[0] <= now]:
            pending.remove(item)
            _, gen, (first, last) = item
            entries = [Delivery(msg(o), NONE) for o in range(first, last + 1)]
            run(seq.filled("r", gen, "e1", total, entries), now)

    for now, offset in enumerate(kept):
        serve(now)
        run(seq.offer(msg(offset), NONE), now)
    now = len(kept)
    while pending:
        serve(now)
        now += 1
    assert out == list(range(1, total + 1))


def test_sweep_forgets_quiet_rooms_but_not_kept_or_filling_ones() -> None:
    now = [0.0]
    seq = Sequencer(clock=lambda: now[0])
    for room in ("quiet", "kept", "filling", "busy"):
        seq.offer(msg(1, room=room), NONE)
    assert seq.offer(msg(5, room="filling"), NONE).fill == (2, 4)
    now[0] = 10.0
    seq.offer(msg(2, room="busy"), NONE)
    assert seq.sweep({"kept"}, idle=5.0) == 1
    assert sorted(seq.rooms) == ["busy", "filling", "kept"]
    now[0] = 20.0
    assert seq.sweep(set(), idle=5.0) == 2  # "filling" stays while its read is in flight
    assert list(seq.rooms) == ["filling"]
