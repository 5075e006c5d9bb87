"""Cluster presence against a model, under random joins, leaves, closes, kills and blips.

Up to three nodes (managers with in-process brokers over one MemoryStore) run on
a virtual clock. Clients (fake transports driven through real sessions) connect,
join, leave, ask ``presence``, change metadata and close; nodes start, stop
cleanly, or are killed (their broker stops without a word, like SIGKILL); the
store fails and comes back, with or without its data. Two seconds after activity
stops (the lease is one second), every live node's ``get_presence`` equals the
live members, and so does every v2 member's view built from its last
``presence`` reply plus the ``presence_diff`` frames after it. v1 connections
never get a presence frame, a metadata key outside ``presence_info`` never shows,
and a blip never makes a live member leave.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lucent_ws import WebSocketManager, jsoncodec
from lucent_ws.broker import Broker
from lucent_ws.broker.memory import MemoryBackend, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.connection import Connection
from lucent_ws.policy import RoomPolicy
from lucent_ws.presence import entry, group
from lucent_ws.session import Session

from ..fakes import FakeTransport
from .virtualtime import VirtualTimeLoop

ROOM = "lobby"
INFO = ("name",)
POLICY = RoomPolicy(ROOM, presence=True, join_leave=True, presence_info=INFO)
LEASE = 1.0
SETTLE = 2.0
SECRET = "s3cret-claim"

FIGURES = {"examples": 0, "steps": 0, "checks": 0, "kills": 0, "blips": 0, "diffs": 0}


@dataclass
class Node:
    manager: WebSocketManager
    broker: Broker


@dataclass
class Client:
    node: Node
    conn: Connection
    transport: FakeTransport
    session: Session
    meta: dict[str, Any]
    joined: bool = False
    live: bool = True
    asked_at: int = field(default=-1)


def view_of(messages: list[Any]) -> dict[str, Any] | None:
    """A client's presence of ROOM: its last reply, then the diffs after it."""
    view: dict[str, dict[str, Any]] | None = None
    count = 0
    for message in messages:
        if message.get("room") != ROOM:
            continue
        if message["type"] == "presence":
            view = {
                key: {e["id"]: e["info"] for e in entries}
                for key, entries in message["members"].items()
            }
            count = message["count"]
        elif message["type"] == "presence_diff" and view is not None:
            for key, entries in message["leaves"].items():
                for e in entries:
                    view.get(key, {}).pop(e["id"], None)
                    if not view.get(key, True):
                        del view[key]
            for key, entries in message["joins"].items():
                for e in entries:
                    view.setdefault(key, {})[e["id"]] = e["info"]
            count = message["count"]
    if view is None:
        return None
    members = {
        key: [{"id": i, "info": info} for i, info in sorted(ids.items())]
        for key, ids in view.items()
    }
    return {"count": count, "members": members}


class PresenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        FIGURES["examples"] += 1
        self.loop = VirtualTimeLoop()
        self.store = MemoryStore(clock=self.loop.time)
        self.nodes: list[Node] = []
        self.clients: list[Client] = []
        self.names = itertools.count()
        self.run(self._start_node())
        self.run(self._start_node())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def sleep(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    async def _start_node(self) -> None:
        manager = WebSocketManager(
            heartbeat=None, close_timeout=0.5, policies=[POLICY], clock=self.loop.time
        )
        broker = Broker(MemoryBackend(self.store), lease=LEASE, clock=self.loop.time)
        broker.reconnect_max = 0.2
        await broker.start(manager)
        await broker.wait_until_up()
        self.nodes.append(Node(manager, broker))

    def live_clients(self) -> list[Client]:
        return [c for c in self.clients if c.live]

    # --- rules -----------------------------------------------------------------------

    @precondition(lambda self: len(self.nodes) < 3)
    @rule()
    def start_node(self) -> None:
        self.run(self._start_node())

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(index=st.integers(0, 2))
    def kill_node(self, index: int) -> None:
        node = self.nodes.pop(index % len(self.nodes))
        FIGURES["kills"] += 1
        task = node.broker._task
        assert task is not None
        task.cancel()  # no goodbye, no cleanup: the lease runs out in the store
        node.manager.presence.close()
        self.sleep(0.001)
        for client in self.clients:
            if client.node is node:
                client.live = False

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(index=st.integers(0, 2))
    def stop_node(self, index: int) -> None:
        node = self.nodes.pop(index % len(self.nodes))
        self.run(node.manager.close_all())
        self.run(node.broker.stop())
        node.manager.presence.close()
        for client in self.clients:
            if client.node is node:
                client.live = False

    @rule(
        index=st.integers(0, 2),
        v2=st.booleans() | st.just(True),
        user=st.none() | st.sampled_from(["ann", "bob", "cy"]),
    )
    def connect(self, index: int, v2: bool, user: str | None) -> None:
        node = self.nodes[index % len(self.nodes)]
        meta: dict[str, Any] = {"name": f"n{next(self.names)}", "token": SECRET}
        if user is not None:
            meta["userId"] = user
        transport = FakeTransport()
        conn = node.manager.connect(transport, transport.close, meta=meta, version=2 if v2 else 1)
        session = Session(node.manager, conn, Limits(rate_limit=0))
        self.clients.append(Client(node, conn, transport, session, dict(meta)))

    def _send(self, client: Client, message: dict[str, Any]) -> None:
        self.run(client.session.on_text(jsoncodec.dumps(message).decode()))

    def _ask(self, client: Client) -> None:
        if client.conn.version == 2:
            self._send(client, {"type": "presence", "room": ROOM})

    @precondition(lambda self: any(not c.joined for c in self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def join(self, pick: int) -> None:
        outside = [c for c in self.live_clients() if not c.joined]
        client = outside[pick % len(outside)]
        self._send(client, {"type": "join", "room": ROOM})
        client.joined = True
        self._ask(client)

    @precondition(lambda self: any(c.joined for c in self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def leave(self, pick: int) -> None:
        members = [c for c in self.live_clients() if c.joined]
        client = members[pick % len(members)]
        self._send(client, {"type": "leave", "room": ROOM})
        client.joined = False

    @precondition(lambda self: any(c.joined for c in self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def ask(self, pick: int) -> None:
        members = [c for c in self.live_clients() if c.joined]
        self._ask(members[pick % len(members)])

    @precondition(lambda self: bool(self.live_clients()))
    @rule(
        pick=st.integers(0, 50),
        key=st.sampled_from(["name", "userId", "token"]),
        value=st.sampled_from(["x", "y", "ann", "bob"]),
    )
    def set_meta(self, pick: int, key: str, value: str) -> None:
        clients = self.live_clients()
        client = clients[pick % len(clients)]
        if key == "token":
            value = SECRET + value
        client.node.manager.set_meta(client.conn.id, key, value)
        client.meta[key] = value

    @precondition(lambda self: bool(self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def close(self, pick: int) -> None:
        clients = self.live_clients()
        client = clients[pick % len(clients)]
        assert client.node.manager.remove(client.conn.id)
        client.live = False

    @rule(seconds=st.sampled_from([0.0, 0.01, 0.04, 0.1, 0.3]))
    def wait(self, seconds: float) -> None:
        self.sleep(seconds)

    @rule(outage=st.sampled_from([0.05, 0.2, 0.3]), empty=st.booleans())
    def blip(self, outage: float, empty: bool) -> None:
        """The store fails and comes back: nobody who stayed may leave meanwhile."""
        FIGURES["blips"] += 1
        self.settle()  # start from a settled presence
        marks = {id(c): len(c.transport.messages()) for c in self.clients}
        self.store.fail()
        self.sleep(outage)
        self.store.recover(empty=empty)
        self.settle()
        stayed = {c.conn.id for c in self.live_clients() if c.joined}
        for client in self.clients:
            for message in client.transport.messages()[marks.get(id(client), 0) :]:
                if message.get("type") == "presence_diff":
                    leaves = [e["id"] for es in message["leaves"].values() for e in es]
                    flapped = [conn_id for conn_id in leaves if conn_id in stayed]
                    assert not flapped, f"a blip made live members leave: {flapped}"

    @rule()
    def settle(self) -> None:
        self.sleep(SETTLE)
        FIGURES["checks"] += 1
        state = {c.conn.id: entry(c.conn.id, c.meta, INFO) for c in self.live_clients() if c.joined}
        expected = {"count": len(state), "members": group(state.values())}
        for node in self.nodes:
            assert node.manager.get_presence(ROOM) == expected, node.broker.node_id
        for client in self.clients:
            messages = client.transport.messages()
            text = client.transport.written.decode(errors="replace")
            presence_frames = [m for m in messages if m.get("type") == "presence_diff"]
            FIGURES["diffs"] += len(presence_frames)
            assert SECRET not in text, "a metadata key outside presence_info was shown"
            if client.conn.version == 1:
                assert not presence_frames, "a v1 connection got presence_diff"
            elif client.live and client.joined:
                assert view_of(messages) == expected, client.conn.id

    def teardown(self) -> None:
        try:
            FIGURES["steps"] += len(self.clients)
            self.settle()
            for node in self.nodes:
                self.run(node.broker.stop())
                node.manager.presence.close()
        finally:
            self.run(_cancel_the_rest())
            self.loop.close()


async def _cancel_the_rest() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_presence_converges_to_the_live_members_on_every_node_and_client() -> None:
    run_state_machine_as_test(
        PresenceMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    print(f"\npresence model: {FIGURES}")
    assert FIGURES["kills"]
    assert FIGURES["blips"]
    assert FIGURES["diffs"]
