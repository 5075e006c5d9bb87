"""WebSocketManager unit tests: pure, no server, fake transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lucent_ws import ConfigurationError, HeartbeatConfig, WebSocketManager
from lucent_ws.codes import CloseCode
from lucent_ws.outbox import FLUSH_SLICE

from .fakes import FakeTransport, fake_connect
from .waiting import wait_until


def payloads(transport: FakeTransport) -> list[Any]:
    """Messages after the initial ``connected``."""
    messages = transport.messages()
    assert messages[0]["type"] == "connected"
    return messages[1:]


def room_of(manager: WebSocketManager, size: int) -> list[tuple[Any, FakeTransport]]:
    """``size`` connections joined to room ``big``, with everything queued so far written."""
    conns = [fake_connect(manager) for _ in range(size)]
    for conn, _ in conns:
        manager.join_room(conn.id, "big")
    manager.flush()
    return conns


def received(transport: FakeTransport) -> list[int]:
    """The ``i`` of each message after ``connected``."""
    return [m["i"] for m in payloads(transport)]


def test_connect_sends_connected_first_with_uuid(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager)
    assert transport.messages() == [{"type": "connected", "id": conn.id}]
    assert len(conn.id) == 36
    assert conn.id.count("-") == 4
    assert manager.connection_ids() == [conn.id]
    assert manager.get_connection(conn.id) is conn


def test_ids_are_unique(manager: WebSocketManager) -> None:
    ids = {fake_connect(manager)[0].id for _ in range(200)}
    assert len(ids) == 200


def test_join_is_a_set_operation(manager: WebSocketManager) -> None:
    conn, _ = fake_connect(manager)
    assert manager.join_room(conn.id, "posts") is True
    assert manager.join_room(conn.id, "posts") is False
    assert manager.get_room_members("posts") == [conn.id]
    assert manager.get_connection_rooms(conn.id) == ["posts"]
    assert manager.list_rooms() == ["posts"]
    assert manager.room_size("posts") == 1


def test_leave_deletes_empty_room(manager: WebSocketManager) -> None:
    a, _ = fake_connect(manager)
    b, _ = fake_connect(manager)
    manager.join_room(a.id, "r")
    manager.join_room(b.id, "r")
    assert manager.leave_room(a.id, "r") is True
    assert manager.leave_room(a.id, "r") is False
    assert manager.list_rooms() == ["r"]
    assert manager.leave_room(b.id, "r") is True
    assert manager.list_rooms() == []
    assert manager.get_room_members("r") == []
    assert manager.get_stats()["rooms"] == {}


def test_unknown_ids_are_harmless(manager: WebSocketManager) -> None:
    assert manager.join_room("nope", "r") is False
    assert manager.leave_room("nope", "r") is False
    assert manager.get_connection_rooms("nope") == []
    assert manager.get_room_members("nope") == []
    assert manager.send_to("nope", {"x": 1}) is False
    assert manager.set_meta("nope", "k", 1) is False
    assert manager.get_meta("nope", "k", "dflt") == "dflt"
    assert manager.pong("nope") is False
    assert manager.remove("nope") is False
    assert manager.list_rooms() == []


def test_remove_leaves_all_rooms_and_drops_meta(manager: WebSocketManager) -> None:
    a, _ = fake_connect(manager)
    b, _ = fake_connect(manager)
    for room in ("x", "y", "z"):
        manager.join_room(a.id, room)
    manager.join_room(b.id, "y")
    manager.set_meta(a.id, "userId", 7)
    assert manager.remove(a.id) is True
    assert manager.list_rooms() == ["y"]
    assert manager.get_room_members("y") == [b.id]
    assert manager.get_meta(a.id, "userId") is None
    assert manager.get_connection(a.id) is None
    assert a.closed


def test_no_zombie_after_removal(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager)
    manager.remove(conn.id)
    assert manager.join_room(conn.id, "r") is False
    assert manager.list_rooms() == []
    assert manager.broadcast_to_room("r", {"x": 1}) == 0
    assert manager.send_to(conn.id, {"x": 1}) is False
    assert manager.set_meta(conn.id, "k", "v") is False
    assert payloads(transport) == []


def test_meta_roundtrip_and_identity(manager: WebSocketManager) -> None:
    conn, _ = fake_connect(manager, meta={"userId": 7})
    assert manager.get_meta(conn.id, "userId") == 7
    assert manager.set_meta(conn.id, "role", "admin") is True
    assert manager.get_meta(conn.id, "role") == "admin"
    assert manager.get_meta(conn.id, "missing") is None
    assert manager.get_meta(conn.id, "missing", 0) == 0
    assert conn.meta == {"userId": 7, "role": "admin"}


def test_send_to_delivers_verbatim(manager: WebSocketManager) -> None:
    a, ta = fake_connect(manager)
    _b, tb = fake_connect(manager)
    doc = {"type": "post:created", "doc": {"id": 1, "title": "é", "tags": [None, 2.5]}}
    assert manager.send_to(a.id, doc) is True
    assert payloads(ta) == [doc]
    assert payloads(tb) == []


def test_broadcast_to_room_with_exclude(manager: WebSocketManager) -> None:
    conns = [fake_connect(manager) for _ in range(4)]
    for conn, _ in conns[:3]:
        manager.join_room(conn.id, "posts")
    msg = {"type": "post:updated", "doc": {"id": 2}}
    assert manager.broadcast_to_room("posts", msg, exclude=[conns[0][0].id]) == 2
    assert payloads(conns[0][1]) == []
    assert payloads(conns[1][1]) == [msg]
    assert payloads(conns[2][1]) == [msg]
    assert payloads(conns[3][1]) == []  # not a member
    assert manager.broadcast_to_room("empty", msg) == 0


def test_broadcast_all_with_exclude(manager: WebSocketManager) -> None:
    conns = [fake_connect(manager) for _ in range(3)]
    assert manager.broadcast_all({"n": 1}, exclude={conns[1][0].id}) == 2
    assert [payloads(t) for _, t in conns] == [[{"n": 1}], [], [{"n": 1}]]


def test_payload_is_encoded_once_per_broadcast(
    manager: WebSocketManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lucent_ws import jsoncodec
    from lucent_ws import manager as manager_module

    calls = 0
    real = jsoncodec.dumps

    def counting(value: Any) -> bytes:
        nonlocal calls
        calls += 1
        return real(value)

    for _ in range(50):
        manager.join_room(fake_connect(manager)[0].id, "r")
    monkeypatch.setattr(manager_module.jsoncodec, "dumps", counting)
    assert manager.broadcast_to_room("r", {"big": list(range(100))}) == 50
    assert manager.broadcast_all("hello") == 50
    assert calls == 2


def test_unserialisable_payload_raises_type_error(manager: WebSocketManager) -> None:
    conn, _ = fake_connect(manager)
    manager.join_room(conn.id, "r")
    with pytest.raises(TypeError):
        manager.broadcast_to_room("r", object())
    with pytest.raises(TypeError):
        manager.broadcast_all({1, 2})
    with pytest.raises(TypeError):
        manager.send_to(conn.id, object())


def test_stats_json_form(manager: WebSocketManager) -> None:
    a, _ = fake_connect(manager)
    b, _ = fake_connect(manager)
    manager.join_room(a.id, "posts")
    manager.join_room(b.id, "posts")
    manager.join_room(b.id, "chat")
    stats = manager.get_stats()
    assert stats["connections"] == 2
    assert stats["rooms"] == {"posts": 2, "chat": 1}
    assert stats["heartbeatActive"] is False
    assert set(stats) >= {"messagesIn", "messagesOut", "bytesOut", "evictions"}


async def test_frames_queued_in_one_tick_share_one_write(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager)
    manager.join_room(conn.id, "r")
    await asyncio.sleep(0)
    before = transport.writes
    for i in range(10):
        manager.broadcast_to_room("r", {"i": i})
    assert transport.writes == before  # nothing written synchronously: never blocks
    await asyncio.sleep(0)
    assert transport.writes == before + 1
    assert payloads(transport) == [{"i": i} for i in range(10)]


async def test_slow_consumer_is_evicted_with_1013(manager: WebSocketManager) -> None:
    slow, slow_t = fake_connect(manager, stalled=True, max_outbound_buffer=10_000)
    fast, fast_t = fake_connect(manager, max_outbound_buffer=10_000)
    for conn in (slow, fast):
        manager.join_room(conn.id, "r")
    for i in range(20):
        manager.broadcast_to_room("r", {"i": i, "pad": "x" * 1000})
        await asyncio.sleep(0)
    await wait_until(lambda: slow_t.close_codes)
    assert manager.get_connection(slow.id) is None
    assert slow_t.close_codes == [CloseCode.TRY_AGAIN_LATER]
    assert manager.get_stats()["evictions"]["slow_consumer"] == 1
    assert [m["i"] for m in payloads(fast_t)] == list(range(20))


async def test_disconnect_flushes_then_closes_with_4001(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager)
    manager.send_to(conn.id, {"last": True})
    assert manager.disconnect(conn.id) is True
    assert manager.disconnect(conn.id) is False
    await wait_until(lambda: transport.close_codes)
    assert payloads(transport) == [{"last": True}]
    assert transport.close_codes == [CloseCode.DISCONNECTED]
    assert manager.get_stats()["evictions"]["kick"] == 1


async def test_stuck_close_is_aborted_after_close_timeout() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=0.05)
    never = asyncio.Event()

    async def hang(code: int, message: str) -> None:
        await never.wait()

    transport = FakeTransport()
    conn = manager.connect(transport, hang)
    manager.disconnect(conn.id)
    await wait_until(lambda: transport.aborted, timeout=2)


async def test_close_all_closes_everyone_in_parallel() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=0.2)
    never = asyncio.Event()

    async def hang(code: int, message: str) -> None:
        await never.wait()

    stuck = [FakeTransport() for _ in range(5)]
    for transport in stuck:
        manager.connect(transport, hang)
    healthy = [fake_connect(manager)[1] for _ in range(5)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await manager.close_all()
    assert loop.time() - started < 0.5  # 5 stuck peers in parallel, not one after another
    assert all(t.aborted for t in stuck)
    assert all(t.close_codes == [CloseCode.GOING_AWAY] for t in healthy)
    assert len(manager) == 0


def test_heartbeat_config_validation() -> None:
    with pytest.raises(ConfigurationError):
        HeartbeatConfig(interval=5, timeout=10)
    with pytest.raises(ConfigurationError):
        HeartbeatConfig(interval=0, timeout=0)


async def test_heartbeat_auto_starts_and_stops() -> None:
    manager = WebSocketManager(heartbeat=HeartbeatConfig(interval=5, timeout=1))
    assert manager.get_stats()["heartbeatActive"] is False
    fake_connect(manager)
    assert manager.get_stats()["heartbeatActive"] is True
    manager.stop_heartbeat()
    await asyncio.sleep(0)
    assert manager.get_stats()["heartbeatActive"] is False
    with pytest.raises(ConfigurationError):
        manager.start_heartbeat(1, 2)
    manager.start_heartbeat(2, 1)
    assert manager.heartbeat_config == HeartbeatConfig(2, 1)
    manager.stop_heartbeat()


async def test_heartbeat_off_does_not_start() -> None:
    manager = WebSocketManager(heartbeat=None)
    fake_connect(manager)
    assert manager.heartbeat_active is False


async def test_heartbeat_evicts_silent_keeps_answering() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=0.1)
    silent, silent_t = fake_connect(manager)
    alive, alive_t = fake_connect(manager)
    manager.start_heartbeat(interval=0.2, timeout=0.1)
    await wait_until(lambda: {"type": "ping"} in alive_t.messages(), timeout=2)
    assert any(op == 0x9 for op, _ in alive_t.frames())  # protocol PING too
    manager.pong(alive.id)
    await wait_until(lambda: silent_t.close_codes, timeout=2)
    assert manager.get_connection(silent.id) is None
    assert silent_t.close_codes == [CloseCode.HEARTBEAT_TIMEOUT]
    assert manager.get_connection(alive.id) is alive
    assert manager.get_stats()["evictions"]["heartbeat"] == 1
    manager.stop_heartbeat()


async def test_a_large_fanout_is_written_in_slices_across_ticks(
    manager: WebSocketManager,
) -> None:
    conns = room_of(manager, FLUSH_SLICE * 2 + 10)
    for i in range(3):
        manager.broadcast_to_room("big", {"i": i})
    await asyncio.sleep(0)
    written = [t for _, t in conns if payloads(t)]
    assert len(written) == FLUSH_SLICE  # the loop got control back after one slice
    for i in range(3, 5):
        manager.broadcast_to_room("big", {"i": i})
    # every connection gets every message once, in order, whatever slice it fell in
    await wait_until(lambda: all(received(t) == list(range(5)) for _, t in conns), 2)


async def test_flush_after_one_slice_writes_each_remaining_connection_once(
    manager: WebSocketManager,
) -> None:
    conns = room_of(manager, FLUSH_SLICE * 3)
    manager.broadcast_to_room("big", {"i": 0})
    await asyncio.sleep(0)
    assert sum(1 for _, t in conns if payloads(t)) == FLUSH_SLICE
    manager.flush()
    manager.broadcast_to_room("big", {"i": 1})
    await wait_until(lambda: all(received(t) == [0, 1] for _, t in conns), 2)


async def test_heartbeat_spreads_one_ping_per_connection_over_the_interval() -> None:
    manager = WebSocketManager(heartbeat=None, close_timeout=0.1)
    transports = [fake_connect(manager)[1] for _ in range(1000)]

    def pinged() -> int:
        return sum({"type": "ping"} in t.messages() for t in transports)

    manager.start_heartbeat(interval=1.0, timeout=1.0)
    await asyncio.sleep(0.35)  # a third of the interval: the sweep must be under way, not done
    assert 0 < pinged() < len(transports)  # a sweep in slices, not all at once
    await wait_until(lambda: pinged() == len(transports), timeout=3)
    manager.stop_heartbeat()
    counts = [t.messages().count({"type": "ping"}) for t in transports]
    # one ping each, except the first slice of a next round if it began meanwhile
    assert all(1 <= c <= 2 for c in counts)
    assert counts.count(2) <= len(transports) // 5


async def test_a_synchronous_burst_over_the_buffer_limit_evicts_before_any_write(
    manager: WebSocketManager,
) -> None:
    conn, transport = fake_connect(manager, max_outbound_buffer=50_000)
    manager.join_room(conn.id, "r")
    manager.flush()
    for i in range(10):
        manager.broadcast_to_room("r", {"i": i, "pad": "x" * 10_000})
    assert manager.get_connection(conn.id) is None  # evicted during the burst itself
    assert manager.get_stats()["evictions"]["slow_consumer"] == 1
    assert manager.broadcast_to_room("r", {"after": True}) == 0
    await wait_until(lambda: transport.close_codes)
    assert transport.close_codes == [CloseCode.TRY_AGAIN_LATER]
    assert payloads(transport) == []  # its queued output was discarded


async def test_a_burst_of_mixed_sizes_over_the_limit_is_never_written(
    manager: WebSocketManager,
) -> None:
    conn, transport = fake_connect(manager, max_outbound_buffer=50_000)
    other, other_transport = fake_connect(manager, max_outbound_buffer=50_000)
    for c in (conn, other):
        manager.join_room(c.id, "r")
    manager.flush()
    manager.send_to(conn.id, {"big": "x" * 45_000})  # one frame under the limit
    for i in range(1000):  # small frames: their count alone suggests no burst
        manager.broadcast_to_room("r", {"i": i})
    await wait_until(lambda: transport.close_codes)
    assert transport.close_codes == [CloseCode.TRY_AGAIN_LATER]
    assert payloads(transport) == []  # neither the big frame nor the small ones
    assert [m["i"] for m in payloads(other_transport)] == list(range(1000))


async def test_a_single_frame_over_the_limit_is_written(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager, max_outbound_buffer=1_000)
    manager.flush()
    assert manager.send_to(conn.id, {"big": "x" * 5_000})
    await asyncio.sleep(0)
    assert payloads(transport) == [{"big": "x" * 5_000}]
    assert manager.get_connection(conn.id) is conn  # the socket took it all


def test_an_id_excluded_twice_is_skipped_once(manager: WebSocketManager) -> None:
    (a, ta), (b, tb), (c, tc) = (fake_connect(manager) for _ in range(3))
    for conn in (a, b, c):
        manager.join_room(conn.id, "r")
    assert manager.broadcast_to_room("r", {"n": 1}, exclude=[a.id, a.id, "nobody"]) == 2
    assert manager.broadcast_all({"n": 2}, exclude=(b.id, b.id)) == 2
    manager.flush()
    assert payloads(ta) == [{"n": 2}]
    assert payloads(tb) == [{"n": 1}]
    assert payloads(tc) == [{"n": 1}, {"n": 2}]


async def test_pending_connections_stay_bounded_under_steady_traffic(
    manager: WebSocketManager,
) -> None:
    conns = room_of(manager, FLUSH_SLICE * 20)
    longest = 0
    for i in range(400):  # a broadcast every other tick never lets the room drain
        if i % 2 == 0:
            manager.broadcast_to_room("big", {"i": i // 2})
        await asyncio.sleep(0)
        longest = max(longest, manager._outbox.pending_connections)
    assert longest <= len(conns)
    await wait_until(lambda: all(received(t) == list(range(200)) for _, t in conns), 2)


async def test_a_direct_burst_of_shrinking_frames_evicts_at_once(
    manager: WebSocketManager,
) -> None:
    conn, transport = fake_connect(manager, max_outbound_buffer=50_000)
    manager.flush()
    for size in (30_000, 15_000, 10_000):  # 55 KB in all; each frame alone fits
        manager.send_to(conn.id, {"pad": "x" * size})
    assert manager.get_connection(conn.id) is None
    await wait_until(lambda: transport.close_codes)
    assert payloads(transport) == []


async def test_broadcasts_excluding_the_only_member_leave_nothing_queued(
    manager: WebSocketManager,
) -> None:
    (alone, transport) = fake_connect(manager)
    manager.join_room(alone.id, "r")
    await asyncio.sleep(0)  # the flush already scheduled runs: nothing is due now
    for i in range(100):
        assert manager.broadcast_to_room("r", {"i": i}, exclude=[alone.id]) == 0
    await wait_until(
        lambda: not manager._outbox.pending_connections, 2
    )  # drained by the flush it scheduled
    assert [m for m in payloads(transport) if "i" in m] == []
