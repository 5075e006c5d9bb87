"""The per-room sequencer of history rooms over a broker, without a server."""

from __future__ import annotations

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
