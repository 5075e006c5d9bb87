"""The presence model catches bugs: each mutant below breaks presence one way, and the model fails.

A mutant is applied with ``monkeypatch``, then the model
(:mod:`tests.cluster.presence_model`) runs with derandomized generation and no
shrinking; the test passes only if the model raises an ``AssertionError`` within
:data:`EXAMPLES` examples. The figures printed say after how many examples each
mutant was caught and by which check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from lucent_ws import WebSocketManager
from lucent_ws.presence import PresenceDiff, PresenceDiffer, PresenceState
from lucent_ws.presence_hub import PresenceSnapshot, PresenceTracker, snapshot
from lucent_ws.replica import CONNECT, JOIN, META, ClusterView, NodeView, Record

from .presence_model import FIGURES, PresenceMachine

EXAMPLES = 500

Mutant = Callable[[pytest.MonkeyPatch], None]


def drop_leave_only_diffs(mp: pytest.MonkeyPatch) -> None:
    """A diff with leaves and no joins is announced but never sent."""
    original = PresenceDiffer.diff

    def diff(self: PresenceDiffer, room: str, now: PresenceState) -> PresenceDiff | None:
        found = original(self, room, now)
        return None if found is not None and not found["joins"] else found

    mp.setattr(PresenceDiffer, "diff", diff)


def keep_expired_nodes(mp: pytest.MonkeyPatch) -> None:
    """Reads keep a node whose lease ran out (a killed node's members stay)."""

    def nodes(self: ClusterView) -> list[NodeView]:
        return list(self._nodes.values())

    mp.setattr(ClusterView, "nodes", nodes)


def drop_silently(mp: pytest.MonkeyPatch) -> None:
    """A dropped node's rooms are not reported to presence (its members' leaves are never sent)."""

    def drop(self: ClusterView, node_id: str) -> bool:
        return self._nodes.pop(node_id, None) is not None

    mp.setattr(ClusterView, "drop", drop)


def no_expiry_timer(mp: pytest.MonkeyPatch) -> None:
    """No timer on the first lease to run out: a dead node's members leave only when
    something else reads the view."""
    mp.setattr(PresenceTracker, "_arm_expiry", lambda self: None)


def diff_twice(mp: pytest.MonkeyPatch) -> None:
    """Every presence diff is sent twice."""
    original = PresenceTracker.__init__

    def init(self: PresenceTracker, *args: Any) -> None:
        original(self, *args)
        fanout = self._fanout
        self._fanout = lambda conns, frame: (fanout(conns, frame), fanout(conns, frame))

    mp.setattr(PresenceTracker, "__init__", init)


def skip_first_batch(mp: pytest.MonkeyPatch) -> None:
    """After a local join, the room's next diff is announced but not sent."""
    skip: set[tuple[int, str]] = set()
    join_room, flush = WebSocketManager.join_room, PresenceTracker._flush

    def joined(self: WebSocketManager, conn_id: str, room: str) -> bool:
        skip.add((id(self.presence), room))
        return join_room(self, conn_id, room)

    def skipping(self: PresenceTracker, room: str) -> None:
        if (id(self), room) not in skip:
            flush(self, room)
            return
        skip.discard((id(self), room))
        fanout = self._fanout
        self._fanout = lambda conns, frame: None
        try:
            flush(self, room)
        finally:
            self._fanout = fanout

    mp.setattr(WebSocketManager, "join_room", joined)
    mp.setattr(PresenceTracker, "_flush", skipping)


def fresh_reply(mp: pytest.MonkeyPatch) -> None:
    """The presence reply is the presence now, not the one the next diffs start from."""

    def for_member(self: PresenceTracker, room: str) -> PresenceSnapshot:
        return snapshot(self.state(room))

    mp.setattr(PresenceTracker, "for_member", for_member)


def merge_snapshots(mp: pytest.MonkeyPatch) -> None:
    """A rebuild from a snapshot keeps records the snapshot no longer has (stale members)."""

    def apply_snapshot(
        self: ClusterView,
        node_id: str,
        seq: int,
        records: Mapping[str, Record],
        ttl: float,
        stats: Mapping[str, Any] | None = None,
    ) -> bool:
        node = self._node(node_id)
        node.expires_at = self._clock() + ttl
        if seq < node.seq:
            return False
        node.seq = seq
        node.synced = True
        for conn_id, record in records.items():
            node.apply(CONNECT, conn_id, record.meta)
            for room in record.rooms:
                node.apply(JOIN, conn_id, room)
        self._changed(set(node.rooms))
        return True

    mp.setattr(ClusterView, "apply_snapshot", apply_snapshot)


def remote_meta_unannounced(mp: pytest.MonkeyPatch) -> None:
    """A metadata change on another node touches no room (no diff for it)."""
    original = NodeView.apply

    def apply(self: NodeView, op: str, conn_id: str, arg: Any) -> Iterable[str]:
        touched = original(self, op, conn_id, arg)
        return () if op == META else touched

    mp.setattr(NodeView, "apply", apply)


def drop_on_outage(mp: pytest.MonkeyPatch) -> None:
    """After a store outage the other nodes are forgotten instead of suspended: their
    members leave and join again."""
    mp.setattr(ClusterView, "suspend", ClusterView.clear)


MUTANTS: dict[str, Mutant] = {
    "drop a leave-only diff": drop_leave_only_diffs,
    "keep a killed node's members in reads": keep_expired_nodes,
    "drop a node without telling presence": drop_silently,
    "no timer on the first lease to expire": no_expiry_timer,
    "send each diff twice": diff_twice,
    "skip the first batch after a join": skip_first_batch,
    "reply with the presence now": fresh_reply,
    "stale members kept on a snapshot rebuild": merge_snapshots,
    "remote metadata change unannounced": remote_meta_unannounced,
    "forget other nodes after an outage": drop_on_outage,
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_the_presence_model_catches(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MUTANTS[name](monkeypatch)
    before = FIGURES["examples"]
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(
            PresenceMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=60,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            ),
        )
    reason = str(caught.value).splitlines()[0][:160]
    print(f"\nmutant {name!r}: caught at example {FIGURES['examples'] - before}: {reason}")
