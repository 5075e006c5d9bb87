"""1,000 members join one presence room within a second: right lists, few frames each."""

from __future__ import annotations

import asyncio
from typing import Any

from lucent_ws import WebSocketManager
from lucent_ws.config import Limits
from lucent_ws.envelope import V2
from lucent_ws.policy import Policies, RoomPolicy
from lucent_ws.session import Session

from .fakes import fake_connect
from .waiting import wait_until

MEMBERS = 1000
SPREAD = 0.8  # seconds over which the joins arrive, in 40 bursts


def _view(frames: list[Any]) -> tuple[dict[str, set[str]], int]:
    """The presence a member builds from its reply and the diffs after it; its frame count."""
    view: dict[str, set[str]] | None = None
    count = 0
    for frame in frames:
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "presence":
            count += 1
            view = {key: {e["id"] for e in entries} for key, entries in frame["members"].items()}
        elif kind == "presence_diff":
            count += 1
            if view is None:
                continue  # a diff before the reply: the reply already includes it
            for key, entries in frame["leaves"].items():
                view[key] = view.get(key, set()) - {e["id"] for e in entries}
                if not view[key]:
                    del view[key]
            for key, entries in frame["joins"].items():
                view.setdefault(key, set()).update(e["id"] for e in entries)
    return view or {}, count


async def test_a_thousand_members_join_within_a_second() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0)
    manager.policies = Policies([RoomPolicy("crowd", presence=True, join_leave=True)])
    members = []
    for i in range(MEMBERS):
        conn, transport = fake_connect(manager, version=V2)
        manager.set_meta(conn.id, "userId", f"u{i // 2}")  # two tabs per user
        members.append((Session(manager, conn, Limits(rate_limit=0)), transport))
    loop = asyncio.get_running_loop()
    started = loop.time()
    bursts = 40
    for burst in range(bursts):
        for session, _ in members[burst::bursts]:
            await session.on_text('{"type":"join","room":"crowd"}')
            await session.on_text('{"type":"presence","room":"crowd"}')
        await asyncio.sleep(SPREAD / bursts)
    took = loop.time() - started
    truth = manager.get_presence("crowd")
    assert truth is not None
    expected = {key: {e["id"] for e in entries} for key, entries in truth["members"].items()}
    assert truth["count"] == MEMBERS

    def views() -> list[tuple[dict[str, set[str]], int]]:
        manager.flush()
        return [_view(transport.messages()) for _, transport in members]

    # The last batch goes out within one diff interval of the last join.
    await wait_until(lambda: all(view == expected for view, _ in views()), 5.0, "every view")
    counts = [frames for _, frames in views()]
    print(
        f"{MEMBERS} joins in {took:.2f} s: every view right; presence frames per member "
        f"max {max(counts)}, mean {sum(counts) / len(counts):.1f}"
    )
    assert max(counts) <= 20
