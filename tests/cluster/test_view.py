"""ClusterView: snapshots, sequenced changes, leases."""

from __future__ import annotations

from lucent_ws.replica import CONNECT, GONE, JOIN, LEAVE, META, ClusterView, Record


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_snapshot_then_changes_build_rooms_and_members() -> None:
    view = ClusterView(clock=Clock())
    view.apply_snapshot("b", 3, {"c1": Record(("r",)), "c2": Record(("r", "s"))}, ttl=15)
    assert sorted(view.room_members("r")) == ["c1", "c2"]
    assert view.room_sizes() == {"r": 2, "s": 1}
    assert (
        view.apply_changes(
            "b", 4, [(GONE, "c1", None), (CONNECT, "c3", {"u": 1}), (JOIN, "c3", "s")], ttl=15
        )
        is False
    )
    assert view.room_sizes() == {"r": 1, "s": 2}
    conn = view.connection("c3")
    assert conn is not None
    assert (conn.node, conn.rooms, dict(conn.meta)) == ("b", ("s",), {"u": 1})
    assert view.connection("c1") is None
    assert view.connection_count() == 2
    assert view.connection_count(exclude=["c2", "nobody"]) == 1
    assert view.room_size("s", exclude=["c2"]) == 1


def test_changes_at_or_below_the_snapshot_sequence_are_ignored() -> None:
    view = ClusterView(clock=Clock())
    view.apply_snapshot("b", 5, {"c1": Record(("r",))}, ttl=15)
    view.apply_changes("b", 5, [(GONE, "c1", None)], ttl=15)
    view.apply_changes("b", 2, [(JOIN, "c9", "r")], ttl=15)
    assert view.room_members("r") == ["c1"]


def test_an_older_snapshot_does_not_undo_newer_changes() -> None:
    view = ClusterView(clock=Clock())
    view.apply_snapshot("b", 1, {}, ttl=15)
    view.apply_changes("b", 2, [(CONNECT, "c1", {}), (JOIN, "c1", "r")], ttl=15)
    assert view.apply_snapshot("b", 1, {}, ttl=15) is False
    assert view.room_members("r") == ["c1"]
    assert view.apply_snapshot("b", 2, {"c1": Record(("r",))}, ttl=15) is True


def test_unknown_node_or_skipped_sequence_asks_for_a_snapshot() -> None:
    view = ClusterView(clock=Clock())
    assert view.apply_changes("b", 7, [(CONNECT, "c1", {})], ttl=15) is True
    view.apply_snapshot("b", 7, {"c1": Record()}, ttl=15)
    assert view.apply_changes("b", 8, [(CONNECT, "c2", {})], ttl=15) is False
    assert view.apply_changes("b", 10, [(CONNECT, "c3", {})], ttl=15) is True
    assert sorted(view.connection_ids()) == ["c1", "c2", "c3"]


def test_a_node_disappears_when_its_lease_runs_out() -> None:
    clock = Clock()
    view = ClusterView(clock=clock)
    view.apply_snapshot("b", 1, {"c1": Record(("r",))}, ttl=2)
    view.apply_snapshot("c", 1, {"c2": Record(("r",))}, ttl=10)
    clock.now += 1.9
    assert view.node_ids() == ["b", "c"]
    view.renew("c", ttl=2)
    clock.now += 0.2
    assert view.node_ids() == ["c"]
    assert view.room_members("r") == ["c2"]
    assert view.connection("c1") is None
    clock.now += 2
    assert view.node_ids() == []
    assert view.room_sizes() == {}


def test_drop_forgets_a_node_at_once() -> None:
    view = ClusterView(clock=Clock())
    view.apply_snapshot("b", 1, {"c1": Record(("r",))}, ttl=15)
    assert view.drop("b") is True
    assert view.drop("b") is False
    assert view.room_members("r") == []


def test_changes_are_deltas_applied_in_order() -> None:
    view = ClusterView(clock=Clock())
    view.apply_snapshot("b", 1, {"c1": Record(("r", "s"), {"u": 1})}, ttl=15)
    view.apply_changes(
        "b",
        2,
        [(LEAVE, "c1", "r"), (JOIN, "c1", "t"), (META, "c1", {"u": 2}), (LEAVE, "c9", "r")],
        ttl=15,
    )
    conn = view.connection("c1")
    assert conn is not None
    assert (conn.rooms, dict(conn.meta)) == (("s", "t"), {"u": 2})
    assert view.room_sizes() == {"s": 1, "t": 1}
    view.apply_changes("b", 3, [(GONE, "c1", None)], ttl=15)
    assert view.room_sizes() == {}
    assert view.connection_ids() == []
