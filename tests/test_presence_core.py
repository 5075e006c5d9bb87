"""Presence core: keys, visible information, and diffs computed from states."""

from __future__ import annotations

from lucent_ws.presence import PresenceDiffer, PresenceState, entry, group, key_of


def state(*members: tuple[str, dict[str, object]]) -> PresenceState:
    return {conn_id: entry(conn_id, meta, ("userId", "name")) for conn_id, meta in members}


def test_one_user_with_several_tabs_is_one_key_with_several_entries() -> None:
    now = state(("c1", {"userId": 7, "name": "Ann"}), ("c2", {"userId": 7}), ("c3", {}))
    assert group(now.values()) == {
        "7": [
            {"id": "c1", "info": {"name": "Ann", "userId": 7}},
            {"id": "c2", "info": {"userId": 7}},
        ],
        "c3": [{"id": "c3", "info": {}}],
    }


def test_only_the_listed_metadata_is_ever_shown() -> None:
    meta = {"userId": 7, "claims": {"sub": 7, "email": "a@example.com"}, "token": "s3cret"}
    _, _, info = entry("c1", meta, ("userId",))
    assert dict(info) == {"userId": 7}
    assert key_of("c1", {"userId": {"nested": 1}}) == "c1"  # not a usable key


def test_diffs_come_from_states_so_bursts_and_rebuilds_cost_nothing_extra() -> None:
    differ = PresenceDiffer()
    first = differ.diff("r", state(("c1", {"userId": 1}), ("c2", {"userId": 2})))
    assert first == {
        "count": 2,
        "joins": {
            "1": [{"id": "c1", "info": {"userId": 1}}],
            "2": [{"id": "c2", "info": {"userId": 2}}],
        },
        "leaves": {},
    }
    # The same members again (a membership rebuilt from a snapshot): nothing to announce.
    assert differ.diff("r", state(("c1", {"userId": 1}), ("c2", {"userId": 2}))) is None
    # c2 left and came back between two diffs: nothing; c3 joined: one join.
    diff = differ.diff("r", state(("c1", {"userId": 1}), ("c2", {"userId": 2}), ("c3", {})))
    assert diff == {"count": 3, "joins": {"c3": [{"id": "c3", "info": {}}]}, "leaves": {}}
    diff = differ.diff("r", state(("c3", {})))
    assert diff is not None
    assert diff["count"] == 1
    assert set(diff["leaves"]) == {"1", "2"}
    assert differ.diff("r", {}) == {
        "count": 0,
        "joins": {},
        "leaves": {"c3": [{"id": "c3", "info": {}}]},
    }
    assert differ.rooms() == []
