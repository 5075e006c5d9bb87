"""The history tests' checker counts what it claims: lost, doubled, reordered, stray."""

from __future__ import annotations

from .history_check import RoomStream, Tally, check_streams, check_subscribers
from .history_clients import Delivery, Subscriber

STREAM = RoomStream("h:1", "E", [(n, f"p{n}") for n in range(1, 11)])


def subscriber(offsets: list[int], first: int = 0, epoch: str = "E") -> Subscriber:
    sub = Subscriber("c", ["h:1"])
    sub.first["h:1"] = (first, "E")
    sub.received["h:1"] = [Delivery(n, epoch, replay=False) for n in offsets]
    return sub


def tally_of(sub: Subscriber) -> Tally:
    tally = Tally()
    check_subscribers([sub], {"h:1": STREAM}, tally)
    return tally


def test_an_exact_sequence_from_the_first_join_passes() -> None:
    tally = tally_of(subscriber(list(range(4, 11)), first=3))
    assert (tally.deliveries, tally.failures()) == (7, 0)


def test_lost_doubled_reordered_stray_and_wrong_epoch_are_counted() -> None:
    assert tally_of(subscriber([1, 2, 4, 5, 6, 7, 8, 9, 10])).lost == 1
    assert tally_of(subscriber([*range(1, 11), 10])).doubled == 1
    assert tally_of(subscriber([1, 3, 2, *range(4, 11)])).reordered == 1
    assert tally_of(subscriber([3, *range(4, 11)], first=3)).stray == 1
    assert tally_of(subscriber(list(range(1, 11)), epoch="F")).wrong_epoch == 10


def test_streams_one_entry_per_id_and_acks_that_match() -> None:
    acks = {f"p{n}": [{"offset": n, "epoch": "E"}] for n in range(1, 11)}
    good = Tally()
    check_streams({"h:1": STREAM}, list(acks), acks, good)
    assert (good.stream_entries, good.failures()) == (10, 0)

    repeated = RoomStream("h:1", "E", [*STREAM.entries, (11, "p3")])
    bad = Tally()
    check_streams({"h:1": repeated}, [*acks, "p99"], {**acks, "p4": [{"offset": 5}]}, bad)
    assert (bad.ids_repeated, bad.ids_missing, bad.ack_mismatches) == (1, 1, 1)

    gap = Tally()
    check_streams({"h:1": RoomStream("h:1", "E", [(1, "a"), (3, "b")])}, ["a", "b"], {}, gap)
    assert gap.stream_gaps == 1
