"""The benchmark's C reader counts deliveries exactly and stamps each one.

Frames are written by hand into one end of a socket pair, the reader reads the other.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import orjson
import pytest

from bench.deliveries import payload
from bench.reader import INTEGRITY, Reader, c_compiler
from lucent_ws.frames import text_frame
from tests.conftest import require


class _Peer:
    """The side of a socket pair the reader takes over (what a WsConn offers it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.paused = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def closing(self) -> bool:
        return False


def _frame(seq: int) -> bytes:
    return text_frame(orjson.dumps({"type": "message", "room": "r", "payload": payload(seq)}))


def _integrity(*counts: int) -> dict[str, int]:
    return dict(zip(INTEGRITY, counts, strict=True))


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, _Peer]]]:
    require(c_compiler(), "a C compiler (cc) for bench/reader.c")
    made = [socket.socketpair() for _ in range(3)]
    yield [(ours, _Peer(theirs)) for ours, theirs in made]
    for ours, theirs in made:
        ours.close()
        theirs.close()


async def test_in_order_deliveries_are_counted(pairs: list[tuple[socket.socket, _Peer]]) -> None:
    reader = await Reader.start([peer for _, peer in pairs], 10)
    assert all(peer.paused for _, peer in pairs)
    for seq in range(10, 16):
        for ours, _ in pairs:
            ours.sendall(_frame(seq))
    await reader.wait_delivered(6)
    nbytes, frame_len = await reader.snapshot()
    assert frame_len == len(_frame(10))
    assert nbytes == 3 * 6 * frame_len
    integrity = await reader.finish(16)
    assert integrity == _integrity(18, 0, 0, 0, 0)
    assert not any(peer.paused for _, peer in pairs)


async def test_stamp_mode_gives_one_latency_per_delivery(
    pairs: list[tuple[socket.socket, _Peer]],
) -> None:
    reader = await Reader.start([peer for _, peer in pairs], 0, stamp=True, reserve=4096)
    for seq in range(4):
        for ours, _ in pairs:
            ours.sendall(_frame(seq))
    integrity = await reader.finish(4)
    assert integrity["received"] == 12
    assert integrity["lost"] == 0
    assert len(reader.latencies_ns) == 12
    assert all(0 < ns < 10**9 for ns in reader.latencies_ns)


PING = text_frame(b'{"type":"ping"}')
PROTOCOL_PING = b"\x89\x00"
PONG = b'\x81\x8f\x00\x00\x00\x00{"type":"pong"}'


async def test_pings_are_answered_and_kept_out_of_the_count(
    pairs: list[tuple[socket.socket, _Peer]],
) -> None:
    (sub_end, sub), (idle_end, idle), _ = pairs
    reader = await Reader.start([sub], 0, stamp=True, reserve=4096, pings=True, watch=[idle])
    assert idle.paused
    sub_end.sendall(PING + PROTOCOL_PING + _frame(0) + PING + _frame(1) + _frame(2))
    idle_end.sendall(PING + PROTOCOL_PING)
    await reader.wait_delivered(3)
    integrity = await reader.finish(3)
    assert integrity == _integrity(3, 0, 0, 0, 0)
    assert len(reader.latencies_ns) == 3
    assert sub_end.recv(1024) == PONG * 2
    assert idle_end.recv(1024) == PONG
    assert reader.pings["pings"] == 3
    assert reader.pings["pinged"] == 2
    assert reader.pings["fewest"] == 1
    assert reader.pings["closed"] == 0
    assert not idle.paused


async def test_a_connection_the_server_closes_is_counted_not_fatal(
    pairs: list[tuple[socket.socket, _Peer]],
) -> None:
    (sub_end, sub), (idle_end, idle), _ = pairs
    reader = await Reader.start([sub], 0, stamp=True, pings=True, watch=[idle])
    idle_end.shutdown(socket.SHUT_WR)
    sub_end.sendall(_frame(0))
    await reader.wait_delivered(1)
    integrity = await reader.finish(1)
    assert integrity["received"] == 1
    assert reader.pings["closed"] == 1


async def test_a_close_frame_counts_as_closed_by_the_server(
    pairs: list[tuple[socket.socket, _Peer]],
) -> None:
    (sub_end, sub), (idle_end, idle), _ = pairs
    reader = await Reader.start([sub], 0, stamp=True, pings=True, watch=[idle])
    idle_end.sendall(PING + b"\x88\x02\x03\xe8")  # close 1000, socket left open
    sub_end.sendall(_frame(0))
    await reader.wait_delivered(1)
    await reader.finish(1)
    assert reader.pings["closed"] == 1


@pytest.mark.parametrize(
    ("sent", "readable", "end", "expected"),
    [
        # 4 and 6 never came; 2 came late once and then again.
        (b"".join(map(_frame, (0, 1, 3, 2, 2, 5))), 6, 7, _integrity(6, 2, 1, 1, 0)),
        # The marker of 1 is whole, its frame is not: lost, and its bytes are stray.
        (_frame(0) + _frame(1)[:82], 1, 2, _integrity(1, 1, 0, 0, 82)),
        # A marker no broadcast of the phase carries is no delivery.
        (_frame(0) + _frame(99_999_999) + _frame(1), 3, 2, _integrity(2, 0, 0, 0, len(_frame(0)))),
    ],
    ids=["gaps-duplicates-reorders", "frame-cut-short", "marker-of-another-phase"],
)
async def test_one_stream_is_accounted_exactly(
    pairs: list[tuple[socket.socket, _Peer]],
    sent: bytes,
    readable: int,
    end: int,
    expected: dict[str, int],
) -> None:
    (ours, peer), *_ = pairs
    reader = await Reader.start([peer], 0)
    ours.sendall(sent)
    await reader.wait_delivered(readable)
    assert await reader.finish(end, timeout=0.2) == expected
