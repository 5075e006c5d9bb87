"""The socket guard below an upgraded socket: when its lingering close ends, byte by byte.

The guard is fed what a client sends, cut into reads at arbitrary places, and
must close only once the client's whole close frame was read: never on bytes
inside another frame's payload that merely look like a close frame (that
closed the socket mid-flood, the kernel answered the unread flood with a
reset, and the client lost its close frame in about one flood in seven).
"""

from __future__ import annotations

import asyncio
import os
import random
import struct
from typing import Any

from lucent_ws.lingering import SocketGuard

LINGER = 30.0  # never reached in these tests: the guard must end on the close frame


class FakeTransport(asyncio.Transport):
    """Records what the guard does to the transport below it."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.aborted = False
        self.resumed = 0
        self.unsent = 0

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def resume_reading(self) -> None:
        self.resumed += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Inner(asyncio.Protocol):
    """aiohttp's protocol as the guard sees it: what reaches it."""

    def __init__(self) -> None:
        self.received = b""

    def data_received(self, data: bytes) -> None:
        self.received += data


def frame(opcode: int, payload: bytes, *, masked: bool = True, mask: bytes | None = None) -> bytes:
    """One client frame (FIN set) with a 7-bit, 16-bit or 64-bit length."""
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((0x80 | opcode, bit | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, bit | 126)) + struct.pack("!H", size)
    else:
        head = bytes((0x80 | opcode, bit | 127)) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = os.urandom(4) if mask is None else mask
    keys = key * (size // 4 + 1)
    masked_payload = int.from_bytes(payload, "big") ^ int.from_bytes(keys[:size], "big")
    return head + key + masked_payload.to_bytes(size, "big")


def close_frame(code: int = 1008, reason: bytes = b"") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason)


def guard() -> tuple[SocketGuard, FakeTransport, Inner, list[str]]:
    transport, inner, violations = FakeTransport(), Inner(), []
    g = SocketGuard(
        transport, inner, linger=LINGER, on_unmasked=lambda: violations.append("unmasked")
    )
    return g, transport, inner, violations


def feed(g: SocketGuard, transport: FakeTransport, data: bytes, cuts: list[int]) -> int | None:
    """Feed ``data`` in reads cut at ``cuts``; the offset after which the socket closed."""
    start = 0
    for end in [*cuts, len(data)]:
        if end <= start:
            continue
        g.data_received(data[start:end])
        if transport.closed:
            return end
        start = end
    return None


async def test_bytes_that_look_like_a_close_frame_do_not_end_the_linger() -> None:
    # Masked with a zero key, each payload ends with the six bytes of an empty masked
    # close frame (88 80 + mask): the old check of the last bytes read took it for one.
    lookalike = frame(0x1, b'{"type":"ping"}' + bytes((0x88, 0x80, 0, 0, 0, 0)), mask=bytes(4))
    g, transport, inner, _ = guard()
    g.data_received(frame(0x1, b'{"type":"ping"}'))
    g.close()
    assert not transport.closed
    assert transport.resumed == 1
    for _ in range(1000):
        g.data_received(lookalike)
    assert not transport.closed, "closed on a frame's payload: the unread flood means a reset"
    assert g.discarded == 1000 * len(lookalike)
    g.data_received(close_frame())
    assert transport.closed
    assert not transport.aborted
    assert inner.received == frame(0x1, b'{"type":"ping"}', mask=inner.received[2:6])


async def test_the_close_frame_ends_the_linger_only_once_read_to_its_last_byte() -> None:
    closing = close_frame(1008, b"Rate limit exceeded")
    for cut in range(1, len(closing)):
        g, transport, _, _ = guard()
        g.close()
        g.data_received(frame(0x9, b"") + closing[:cut])
        assert not transport.closed, (
            f"closed with {len(closing) - cut} bytes of the close frame unread"
        )
        g.data_received(closing[cut:])
        assert transport.closed


async def test_random_floods_cut_at_random_end_exactly_after_the_close_frame() -> None:
    rng = random.Random(20261201)
    for trial in range(200):
        frames = []
        for _ in range(rng.randrange(0, 60)):
            size = rng.choice((0, 1, 15, 125, 126, 200, 65_535, 65_536))
            frames.append(frame(rng.choice((0x1, 0x2, 0x9, 0xA)), rng.randbytes(size)))
        before = rng.randrange(0, len(frames) + 1)  # frames that reach aiohttp
        head, tail = b"".join(frames[:before]), b"".join(frames[before:])
        data = tail + close_frame(
            rng.choice((1000, 1008, 1009)), rng.randbytes(rng.randrange(0, 124))
        )
        g, transport, inner, violations = guard()
        g.data_received(head)
        g.close()
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 40))))
        closed_at = feed(g, transport, data, cuts)
        assert closed_at == len(data), f"trial {trial}: closed at {closed_at} of {len(data)} bytes"
        assert inner.received == head
        assert not violations
        assert not transport.aborted


async def test_boundaries_survive_an_unmasked_frame() -> None:
    g, transport, inner, violations = guard()
    good = frame(0x1, b'{"type":"ping"}')
    bad = frame(0x1, b"x" * 300 + bytes((0x88, 0x80, 0, 0, 0, 0)), masked=False)
    g.data_received(good + bad[:5])
    assert violations == ["unmasked"]
    assert inner.received == good
    g.close()  # the 1002 close frame went out: linger until the client's close frame
    g.data_received(bad[5:] + frame(0x1, b"more"))
    assert not transport.closed
    g.data_received(close_frame(1002))
    assert transport.closed
    assert g.discarded == len(bad) + len(frame(0x1, b"more")) + 8


async def test_after_the_peer_closed_the_close_is_immediate() -> None:
    g, transport, inner, _ = guard()
    g.data_received(close_frame(1000))
    assert g.peer_closed
    assert inner.received
    g.close()
    assert transport.closed


async def test_eof_ends_the_linger() -> None:
    g, transport, _, _ = guard()
    g.close()
    g.data_received(frame(0x1, b"half")[:3])
    assert g.eof_received() is True
    assert transport.closed


async def test_at_the_timeout_a_sent_close_frame_ends_with_a_plain_close() -> None:
    # A peer slow to answer (it has not read the close frame yet) gets the close frame
    # and a FIN; a reset would make its kernel drop the close frame unread.
    g, transport, _, _ = guard()
    g.close()
    g.abort()  # the close timeout
    assert transport.closed
    assert not transport.aborted


async def test_at_the_timeout_an_unsent_close_frame_is_aborted() -> None:
    g, transport, _, _ = guard()
    transport.unsent = 1 << 20  # a peer that stopped reading: nothing more will go out
    g.close()
    g.abort()
    assert transport.aborted
    assert not transport.closed


async def test_the_linger_timer_ends_a_silent_peer() -> None:
    transport, inner = FakeTransport(), Inner()
    g = SocketGuard(transport, inner, linger=0.01, on_unmasked=lambda: None)
    g.close()
    async with asyncio.timeout(5):
        while not transport.closed:
            await asyncio.sleep(0.01)
    assert not transport.aborted
