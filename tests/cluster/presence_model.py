"""A model of cluster presence: random joins, leaves, closes, kills and outages on a virtual clock.

Up to three nodes (managers with in-process brokers over one MemoryStore) run on
a virtual clock. Clients (fake transports driven through real sessions) connect,
join, leave, ask ``presence``, change metadata and close; nodes start, stop
cleanly, or are killed (their broker stops without a word, like SIGKILL); the
store fails and comes back (within :data:`MAX_OUTAGE`), with or without its data,
while clients keep acting.

Every v2 client builds its view strictly (:class:`tests.presenceview.PresenceView`,
so a diff sent twice or a reply that the next diff contradicts is an error) at the
virtual time each frame is written. Checked after every step:

- no protocol error in any view;
- no flap: nobody who has been a member, unchanged, for :data:`STABLE` seconds
  leaves anyone's view;
- deadlines, checked at their exact (virtual) time: a member of a killed node has
  left every node and every view within the lease (+ :data:`SLACK`); while the store
  is up, a join, leave, close or metadata change shows in every node and view within
  :data:`PROMPT`.

Two seconds after activity stops (the lease is 1.5 s), every live node's
``get_presence`` equals the live members, and so does every v2 member's view.
v1 connections never get a presence frame, and a metadata key outside
``presence_info`` never shows.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lucent_ws import WebSocketManager, jsoncodec
from lucent_ws import node as node_module
from lucent_ws.broker import Broker
from lucent_ws.broker.memory import MemoryBackend, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.connection import Connection
from lucent_ws.policy import RoomPolicy
from lucent_ws.presence import entry, group
from lucent_ws.session import Session

from ..fakes import FakeTransport, decode_frames
from ..presenceview import PresenceView
from .virtualtime import VirtualTimeLoop

ROOM = "lobby"
INFO = ("name",)
POLICY = RoomPolicy(ROOM, presence=True, join_leave=True, presence_info=INFO)
LEASE = 1.5
SETTLE = 2.03
"""Two seconds and a bit: not a whole number of lease thirds, so a settle does not end on a
node's periodic resync (which would hide a change a node forgot to announce)."""
SLACK = 0.1
"""After a lease runs out: the expiry timer (5 ms) and one diff interval (50 ms), rounded up."""
INTERVAL = 0.01
"""The trackers' diff interval here (50 ms by default): a wrong state that lasts only a few
milliseconds then still reaches the clients, where the checks see it."""
PROMPT = 0.1
"""While the store is up, a change reaches every node at once and every view within a diff."""
STABLE = 0.6
"""A member unchanged for this long may not leave anyone's view (outages here stay short)."""
MAX_OUTAGE = 0.3
"""Longest store outage. Another node's view of a node's lease may date from one renewal
before the last (a third of the lease earlier), so only an outage plus the reconnection
(at most 0.2 s here) shorter than a third of the lease is sure to let no live node's
lease lapse; outages are also at least :data:`RECONNECTED` apart."""
RECONNECTED = 0.5
"""After an outage, brokers notice, back off (at most 0.2 s here) and register again within this."""
SECRET = "s3cret-claim"

FIGURES = {
    "examples": 0, "clients": 0, "settles": 0, "kills": 0, "outages": 0,
    "diffs": 0, "deadlines": 0, "leaves_checked": 0,
}  # fmt: skip


@dataclass
class Node:
    manager: WebSocketManager
    broker: Broker


class StampedTransport(FakeTransport):
    """A fake transport that applies each frame to its client's view when it is written."""

    def __init__(self, machine: PresenceMachine) -> None:
        super().__init__()
        self.machine = machine
        self.client: Client | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        for opcode, payload in decode_frames(data):
            if opcode == 0x1 and self.client is not None:
                self.machine.received(self.client, jsoncodec.loads(payload))


@dataclass
class Client:
    node: Node
    conn: Connection
    transport: StampedTransport
    session: Session
    meta: dict[str, Any]
    view: PresenceView = field(default_factory=lambda: PresenceView(ROOM))
    joined: bool = False
    live: bool = True
    stable_since: float | None = None
    """Since when it has been a member with unchanged metadata (None: not a member)."""
    version: int = 0
    """Its changes so far (join, leave, metadata, close): a deadline holds for one version."""

    def changed(self) -> None:
        self.version += 1


@dataclass
class Deadline:
    client: Client
    version: int
    present: bool
    what: str
    outages: int = -1
    """The outage count when it was set; -1: it holds through outages."""


class PresenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        FIGURES["examples"] += 1
        self.loop = VirtualTimeLoop()
        self.store = MemoryStore(clock=self.loop.time)
        self.store.subscribers = _InOrder()  # type: ignore[assignment]
        self.nodes: list[Node] = []
        self.clients: list[Client] = []
        self.by_id: dict[str, Client] = {}
        self.names = itertools.count()
        self.problems: list[str] = []
        self.outages = 0
        self.down_since: float | None = None
        self.calm_at = 0.0
        """When the brokers are back for sure after the last outage."""
        self.node_names = itertools.count()
        ids = itertools.count(1)
        # Connection ids from a counter: the same steps then run the same way again, so a
        # failure replays and shrinks (random ids reorder sets and so the timing).
        self._uuid = getattr(node_module, "uuid")  # noqa: B009 - not an exported name
        setattr(node_module, "uuid", _Uuids(ids))  # noqa: B010
        random.seed(0)  # the brokers' reconnection jitter, for the same reason
        self.run(self._start_node())
        self.sleep(0.137)  # the nodes' lease timers out of phase
        self.run(self._start_node())

    # --- plumbing ------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def sleep(self, seconds: float) -> None:
        self.run(asyncio.sleep(seconds))

    def now(self) -> float:
        return self.loop.time()

    async def _start_node(self) -> None:
        manager = WebSocketManager(
            heartbeat=None, close_timeout=0.5, policies=[POLICY], clock=self.loop.time
        )
        manager.presence.interval = INTERVAL
        broker = Broker(
            MemoryBackend(self.store),
            lease=LEASE,
            node_id=f"node-{next(self.node_names)}",
            clock=self.loop.time,
        )
        broker.reconnect_max = 0.2
        await broker.start(manager)
        await broker.wait_until_up()
        self.nodes.append(Node(manager, broker))

    def live_clients(self) -> list[Client]:
        return [c for c in self.clients if c.live]

    def members(self) -> list[Client]:
        return [c for c in self.clients if c.live and c.joined]

    def all_up(self) -> bool:
        return not self.store.down and all(node.broker.up for node in self.nodes)

    def received(self, client: Client, message: Any) -> None:
        """A frame reached ``client``: apply it, and look for flaps in a diff."""
        if not client.live:
            return  # its node was killed or stopped: in truth it is disconnected
        client.view.apply(message, self.now())
        if message.get("type") != "presence_diff" or message.get("room") != ROOM:
            return
        FIGURES["diffs"] += 1
        if client.conn.version == 1:
            self.problems.append(f"v1 connection {client.conn.id} got a presence_diff")
        joins = {e["id"] for entries in message["joins"].values() for e in entries}
        for entries in message["leaves"].values():
            for e in entries:
                FIGURES["leaves_checked"] += 1
                left = self.by_id.get(e["id"])
                if e["id"] in joins or left is None or left.stable_since is None:
                    continue
                if self.now() - left.stable_since >= STABLE:
                    self.problems.append(
                        f"flap: {e['id']}, a member since {left.stable_since:.3f}, left the "
                        f"view of {client.conn.id} at {self.now():.3f}"
                    )

    def expect(self, client: Client, present: bool, what: str, within: float = PROMPT) -> None:
        """``within`` seconds from now, ``client`` must be in every node and view with its
        metadata (``present``), or out of them; checked at that very (virtual) time."""
        if within == PROMPT and (not self.all_up() or self.now() < self.calm_at):
            return  # its change may be lost in an outage: the snapshot after it settles it
        outages = self.outages if within == PROMPT else -1
        deadline = Deadline(client, client.version, present, what, outages)
        self.loop.call_later(within, self.check_deadline, deadline)

    def check_deadline(self, deadline: Deadline) -> None:
        client = deadline.client
        if deadline.outages not in (-1, self.outages) or client.version != deadline.version:
            return  # an outage since (a snapshot settles it), or a newer change
        FIGURES["deadlines"] += 1
        key, _, info = entry(client.conn.id, client.meta, INFO)
        want = (key, dict(info)) if deadline.present else None
        where = f"{deadline.what} of {client.conn.id} at {self.now():.3f}"
        # Views first: reading a node's presence drops expired leases as a side effect.
        for viewer in self.members():
            if viewer.conn.version == 2 and viewer.view.members is not None:
                seen = viewer.view.members.get(client.conn.id)
                if seen != want:
                    self.problems.append(f"{where}: view of {viewer.conn.id} has {seen}")
        for node in self.nodes:
            presence = node.manager.get_presence(ROOM)
            assert presence is not None
            held = {
                e["id"]: (k, e["info"]) for k, es in presence["members"].items() for e in es
            }.get(client.conn.id)
            if held != want:
                self.problems.append(f"{where}: node {node.broker.node_id} has {held}")

    def _send(self, client: Client, message: dict[str, Any]) -> None:
        self.run(client.session.on_text(jsoncodec.dumps(message).decode()))

    def _ask(self, client: Client) -> None:
        if client.conn.version == 2:
            self._send(client, {"type": "presence", "room": ROOM})

    def _gone(self, node: Node, within: float) -> None:
        for client in self.clients:
            if client.node is node and client.live:
                client.changed()
                client.live = False
                client.stable_since = None
                if client.joined:
                    self.expect(client, False, "a member of a node that went away", within)

    # --- rules: nodes and the store ---------------------------------------------------

    @precondition(lambda self: len(self.nodes) < 3 and not self.store.down)
    @rule(after=st.sampled_from([0.0, 0.07, 0.19]))
    def start_node(self, after: float) -> None:
        self.sleep(after)
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
        self._gone(node, LEASE + SLACK)
        self.sleep(0.001)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(index=st.integers(0, 2))
    def stop_node(self, index: int) -> None:
        node = self.nodes.pop(index % len(self.nodes))
        prompt = self.all_up()
        self.run(node.manager.close_all())
        self.run(node.broker.stop())
        node.manager.presence.close()
        self._gone(node, PROMPT if prompt else LEASE + SLACK)

    @precondition(lambda self: not self.store.down and self.now() >= self.calm_at)
    @rule(outage=st.sampled_from([0.05, 0.2, MAX_OUTAGE]), empty=st.booleans())
    def blip(self, outage: float, empty: bool) -> None:
        """The store fails and comes back after ``outage`` seconds, nobody acting meanwhile."""
        self.fail_store()
        self.sleep(outage)
        self.recover_store(empty)

    @precondition(lambda self: not self.store.down and self.now() >= self.calm_at)
    @rule()
    def fail_store(self) -> None:
        """The store fails; clients keep acting until :meth:`recover_store`."""
        FIGURES["outages"] += 1
        self.outages += 1
        self.down_since = self.now()
        self.store.fail()

    @precondition(lambda self: self.store.down)
    @rule(empty=st.booleans())
    def recover_store(self, empty: bool) -> None:
        self.store.recover(empty=empty)
        self.down_since = None
        self.calm_at = self.now() + RECONNECTED

    # --- rules: clients ---------------------------------------------------------------

    @rule(
        index=st.integers(0, 2),
        v2=st.booleans() | st.just(True),
        user=st.none() | st.sampled_from(["ann", "bob", "cy"]),
        join=st.booleans() | st.just(True),
    )
    def connect(self, index: int, v2: bool, user: str | None, join: bool) -> None:
        node = self.nodes[index % len(self.nodes)]
        meta: dict[str, Any] = {"name": f"n{next(self.names)}", "token": SECRET}
        if user is not None:
            meta["userId"] = user
        transport = StampedTransport(self)
        conn = node.manager.connect(transport, transport.close, meta=meta, version=2 if v2 else 1)
        session = Session(node.manager, conn, Limits(rate_limit=0))
        client = Client(node, conn, transport, session, dict(meta))
        transport.client = client
        self.clients.append(client)
        self.by_id[conn.id] = client
        FIGURES["clients"] += 1
        if join:
            self._join(client)

    @precondition(lambda self: any(not c.joined for c in self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def join(self, pick: int) -> None:
        outside = [c for c in self.live_clients() if not c.joined]
        self._join(outside[pick % len(outside)])

    def _join(self, client: Client) -> None:
        client.view.reset()  # a new membership: the view starts again from the next reply
        client.changed()
        client.stable_since = self.now()
        self._send(client, {"type": "join", "room": ROOM})
        client.joined = True
        self._ask(client)
        self.expect(client, True, "a join")

    @precondition(lambda self: bool(self.members()))
    @rule(pick=st.integers(0, 50))
    def leave(self, pick: int) -> None:
        members = self.members()
        client = members[pick % len(members)]
        client.stable_since = None
        client.changed()
        self._send(client, {"type": "leave", "room": ROOM})
        client.joined = False
        self.expect(client, False, "a leave")

    @precondition(lambda self: bool(self.members()))
    @rule(pick=st.integers(0, 50))
    def ask(self, pick: int) -> None:
        members = self.members()
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
        if client.joined:
            client.stable_since = self.now()
        client.changed()
        self.run(_call(client.node.manager.set_meta, client.conn.id, key, value))
        client.meta[key] = value
        if client.joined:
            self.expect(client, True, "a metadata change")

    @precondition(lambda self: bool(self.live_clients()))
    @rule(pick=st.integers(0, 50))
    def close(self, pick: int) -> None:
        clients = self.live_clients()
        client = clients[pick % len(clients)]
        client.stable_since = None
        client.changed()
        assert self.run(_call(client.node.manager.remove, client.conn.id))
        client.live = False
        if client.joined:
            self.expect(client, False, "a close")

    @rule(seconds=st.sampled_from([0.0, 0.01, 0.04, 0.1, 0.3]), empty=st.booleans())
    def wait(self, seconds: float, empty: bool) -> None:
        """Time passes; an outage that reached :data:`MAX_OUTAGE` ends (``empty``: data lost)."""
        if self.down_since is not None:
            seconds = max(0.0, min(seconds, self.down_since + MAX_OUTAGE - self.now()))
        self.sleep(seconds)
        if self.down_since is not None and self.now() >= self.down_since + MAX_OUTAGE:
            self.recover_store(empty)

    @rule()
    def settle(self) -> None:
        if self.store.down:
            self.recover_store(False)
        self.sleep(SETTLE)
        FIGURES["settles"] += 1
        self.check_now()
        state = {c.conn.id: entry(c.conn.id, c.meta, INFO) for c in self.members()}
        expected = {"count": len(state), "members": group(state.values())}
        for client in self.clients:
            assert SECRET not in client.transport.written.decode(errors="replace"), (
                "a metadata key outside presence_info was shown"
            )
            if client.live and client.joined and client.conn.version == 2:
                assert client.view.wire() == expected, client.conn.id
        for node in self.nodes:
            assert node.manager.get_presence(ROOM) == expected, node.broker.node_id

    # --- checks after every step ----------------------------------------------------

    @invariant()
    def check_now(self) -> None:
        assert not self.problems, self.problems
        for client in self.clients:
            assert not client.view.errors, (client.conn.id, client.view.errors)

    def teardown(self) -> None:
        try:
            self.settle()
            for node in self.nodes:
                self.run(node.broker.stop())
                node.manager.presence.close()
        finally:
            self.run(_cancel_the_rest())
            self.loop.close()
            setattr(node_module, "uuid", self._uuid)  # noqa: B010


class _InOrder(dict[Any, None]):
    """A set that iterates in insertion order (the store's subscribers: a plain set of
    queues iterates in memory-address order, which differs from run to run)."""

    def add(self, item: Any) -> None:
        self[item] = None

    def discard(self, item: Any) -> None:
        self.pop(item, None)


class _Uuids:
    """Stands for the :mod:`uuid` module in :mod:`lucent_ws.node`: counted UUIDs."""

    def __init__(self, counter: itertools.count[int]) -> None:
        self._counter = counter

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=next(self._counter) * 0x9E3779B97F4A7C15 % 2**128, version=4)


async def _call(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function`` on the running loop, as the host's code would."""
    return function(*args)


async def _cancel_the_rest() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
