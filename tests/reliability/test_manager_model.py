"""Property-based tests: the manager against a simple model, and the parser against anything.

The manager is pure, so a hypothesis state machine drives it with in-memory
transports (no server) on a private event loop, and after every step compares
membership, what each connection received, the stats and the close codes with
a dictionary-and-set model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from lucent_ws import jsoncodec, protocol
from lucent_ws.codes import CloseCode
from lucent_ws.errors import ProtocolError
from lucent_ws.manager import WebSocketManager

from ..fakes import FakeTransport

T = TypeVar("T")
ROOMS = st.sampled_from(["a", "b", "c", "d"])
HEARTBEAT_INTERVAL = 0.02
HEARTBEAT_TIMEOUT = 0.01


class ModelConnection:
    """What the model knows about one connection."""

    def __init__(self, conn_id: str, transport: FakeTransport) -> None:
        self.id = conn_id
        self.transport = transport
        self.rooms: set[str] = set()
        self.live = True
        self.expected: list[Any] = [{"type": "connected", "id": conn_id}]
        self.close_code: int | None = None
        self.pings = 0  # heartbeat pings it must have received, at least

    def received(self) -> tuple[list[Any], int]:
        """Messages received other than heartbeat pings, and the number of pings."""
        messages = self.transport.messages()
        others = [m for m in messages if m != {"type": "ping"}]
        return others, len(messages) - len(others)


class ManagerMachine(RuleBasedStateMachine):
    """Random sequences of hub operations, checked against a model after each step."""

    connections = Bundle("connections")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.manager = WebSocketManager(heartbeat=None, close_timeout=0.5)
        self.model: dict[str, ModelConnection] = {}
        self.evictions = {"kick": 0, "heartbeat": 0, "slow_consumer": 0}
        self.serial = 0
        self.heartbeat_configured = False  # connect() then starts it by itself
        self.heartbeat_active = False

    def teardown(self) -> None:
        self.loop.run_until_complete(self.manager.close_all())
        self.manager.stop_heartbeat()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def run(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the loop, then let flushes and close tasks finish."""

        async def step() -> T:
            result = action()
            for _ in range(3):
                await asyncio.sleep(0)
            return result

        return self.loop.run_until_complete(step())

    def payload(self) -> dict[str, int]:
        self.serial += 1
        return {"n": self.serial}

    def live(self) -> list[ModelConnection]:
        return [c for c in self.model.values() if c.live]

    def members(self, room: str) -> list[ModelConnection]:
        return [c for c in self.live() if room in c.rooms]

    def drop(self, conn: ModelConnection, code: int | None) -> None:
        conn.live = False
        conn.rooms.clear()
        conn.close_code = code

    # --- rules ---------------------------------------------------------------------

    @rule(target=connections)
    def connect(self) -> ModelConnection:
        transport = FakeTransport()
        conn = self.run(lambda: self.manager.connect(transport, transport.close))
        model = ModelConnection(conn.id, transport)
        self.heartbeat_active = self.heartbeat_configured
        self.model[conn.id] = model
        return model

    @rule(conn=connections)
    def client_goes_away(self, conn: ModelConnection) -> None:
        assert self.run(lambda: self.manager.remove(conn.id)) is conn.live
        if conn.live:
            self.drop(conn, None)

    @rule(conn=connections)
    def kick(self, conn: ModelConnection) -> None:
        assert self.run(lambda: self.manager.disconnect(conn.id)) is conn.live
        if conn.live:
            self.drop(conn, CloseCode.DISCONNECTED)
            self.evictions["kick"] += 1

    @rule(conn=connections, room=ROOMS)
    def join(self, conn: ModelConnection, room: str) -> None:
        changed = self.run(lambda: self.manager.join_room(conn.id, room))
        assert changed is (conn.live and room not in conn.rooms)
        if conn.live:
            conn.rooms.add(room)

    @rule(conn=connections, room=ROOMS)
    def leave(self, conn: ModelConnection, room: str) -> None:
        changed = self.run(lambda: self.manager.leave_room(conn.id, room))
        assert changed is (room in conn.rooms)
        conn.rooms.discard(room)

    @rule(conn=connections)
    def send(self, conn: ModelConnection) -> None:
        payload = self.payload()
        assert self.run(lambda: self.manager.send_to(conn.id, payload)) is conn.live
        if conn.live:
            conn.expected.append(payload)

    @rule(room=ROOMS, exclude=st.lists(connections, max_size=3))
    def broadcast_room(self, room: str, exclude: list[ModelConnection]) -> None:
        payload = self.payload()
        skip = {c.id for c in exclude}
        count = self.run(lambda: self.manager.broadcast_to_room(room, payload, exclude=skip))
        targets = [c for c in self.members(room) if c.id not in skip]
        assert count == len(targets)
        for c in targets:
            c.expected.append(payload)

    @rule(exclude=st.lists(connections, max_size=3))
    def broadcast_everyone(self, exclude: list[ModelConnection]) -> None:
        payload = self.payload()
        skip = {c.id for c in exclude}
        count = self.run(lambda: self.manager.broadcast_all(payload, exclude=skip))
        targets = [c for c in self.live() if c.id not in skip]
        assert count == len(targets)
        for c in targets:
            c.expected.append(payload)

    @rule(conn=consumes(connections))
    def stall_then_send(self, conn: ModelConnection) -> None:
        """A peer whose buffer is over its limit is evicted as a slow consumer (1013)."""
        conn.transport.stalled = True
        payload = {"blob": "x" * (1024 * 1024 + 1)}
        assert self.run(lambda: self.manager.send_to(conn.id, payload)) is conn.live
        if conn.live:
            conn.expected.append(payload)
            self.drop(conn, CloseCode.TRY_AGAIN_LATER)
            self.evictions["slow_consumer"] += 1

    @rule(answering=st.sets(connections))
    def heartbeat_round(self, answering: set[ModelConnection]) -> None:
        """A ping round: whoever does not answer within the timeout is evicted (4000).

        The answering connections answer every ping, so a second round that
        starts before the heartbeat is stopped again changes nothing.
        """
        silent = {c.id for c in self.live()} - {c.id for c in answering}
        pinged = self.live()
        before = {c.id: c.received()[1] for c in pinged}

        async def round_trip() -> None:
            self.manager.start_heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
            async with asyncio.timeout(5):
                # The sweep pings connections at different moments across the
                # interval: answering ones answer all along.
                while not all(c.received()[1] > before[c.id] for c in pinged) or any(
                    cid in self.manager.connection_ids() for cid in silent
                ):
                    for c in answering:
                        self.manager.pong(c.id)
                    await asyncio.sleep(0.001)
            # Leave it configured with timing that never fires during the test:
            # like the original, the next connect() starts it again by itself.
            self.manager.start_heartbeat(3600, 3600)
            self.manager.stop_heartbeat()
            for _ in range(3):
                await asyncio.sleep(0)

        if not pinged:
            return
        self.loop.run_until_complete(round_trip())
        self.heartbeat_configured = True
        self.heartbeat_active = False
        for c in pinged:
            c.pings = before[c.id] + 1
            if c.id in silent:
                self.drop(c, CloseCode.HEARTBEAT_TIMEOUT)
                self.evictions["heartbeat"] += 1

    # --- invariants ----------------------------------------------------------------

    @invariant()
    def membership_matches(self) -> None:
        manager = self.manager
        rooms = {r for c in self.live() for r in c.rooms}
        assert set(manager.list_rooms()) == rooms  # empty rooms are deleted
        for room in ["a", "b", "c", "d"]:
            assert set(manager.get_room_members(room)) == {c.id for c in self.members(room)}
            assert manager.room_size(room) == len(self.members(room))
        for c in self.model.values():
            assert set(manager.get_connection_rooms(c.id)) == c.rooms
        assert set(manager.connection_ids()) == {c.id for c in self.live()}

    @invariant()
    def deliveries_match(self) -> None:
        for c in self.model.values():
            others, pings = c.received()
            assert others == c.expected
            assert pings >= c.pings
            if c.close_code is not None:
                assert c.transport.close_codes == [c.close_code] or c.transport.aborted
            elif not c.live:
                assert c.transport.close_codes == []

    @invariant()
    def stats_match(self) -> None:
        stats = self.manager.get_stats()
        assert stats["connections"] == len(self.live())
        assert stats["heartbeatActive"] is self.heartbeat_active
        expected_rooms: dict[str, int] = {}
        for c in self.live():
            for r in c.rooms:
                expected_rooms[r] = expected_rooms.get(r, 0) + 1
        assert stats["rooms"] == expected_rooms
        for reason, count in self.evictions.items():
            assert stats["evictions"][reason] == count


ManagerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_manager_against_model = ManagerMachine.TestCase


# --- the parser ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["join", "leave", "broadcast", "ping", "pong", "x"]) | json_values,
        "room": st.text(max_size=200) | json_values,
        "payload": json_values,
        "ref": st.integers() | st.text(max_size=80) | json_values,
    },
)


def parse_or_protocol_error(data: str | bytes) -> None:
    error: ProtocolError | None = None
    try:
        message = protocol.parse(data)
    except ProtocolError as exc:
        error = exc
    if error is None:
        assert isinstance(
            message,
            protocol.Join | protocol.Leave | protocol.Broadcast | protocol.Ping | protocol.Pong,
        )
    else:
        assert error.code in {"invalid_json", "invalid_message", "unknown_type"}
        assert error.ref is None or isinstance(error.ref, int | str)


@settings(max_examples=400, deadline=None)
@given(st.text() | st.binary())
def test_parse_raises_only_protocol_error_on_any_input(data: str | bytes) -> None:
    parse_or_protocol_error(data)


@settings(max_examples=400, deadline=None)
@given(message_like)
def test_parse_raises_only_protocol_error_on_message_shaped_json(message: dict[str, Any]) -> None:
    parse_or_protocol_error(jsoncodec.dumps(message).decode())


@pytest.mark.parametrize("depth", [100, 1_000, 10_000, 100_000])
@pytest.mark.parametrize(
    "shape", ["[{}]", '{"a":{}}', '{"type":"broadcast","room":"r","payload":{}}']
)
def test_parse_survives_deep_nesting(depth: int, shape: str) -> None:
    opening, closing = shape[: shape.index("{}") + 1], shape[shape.index("{}") + 1 :]
    text = opening * depth + closing * depth
    parse_or_protocol_error(text)
