"""In-memory stand-ins for the I/O layer, to drive the pure manager without a server."""

from __future__ import annotations

from typing import Any

from lucent_ws import jsoncodec
from lucent_ws.connection import Connection
from lucent_ws.manager import WebSocketManager


def decode_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server frames into ``(opcode, payload)`` pairs."""
    frames = []
    i = 0
    while i < len(data):
        opcode = data[i] & 0x0F
        size = data[i + 1] & 0x7F
        i += 2
        if size == 126:
            size = int.from_bytes(data[i : i + 2], "big")
            i += 2
        elif size == 127:
            size = int.from_bytes(data[i : i + 8], "big")
            i += 8
        frames.append((opcode, data[i : i + size]))
        i += size
    return frames


class FakeTransport:
    """Records writes; ``stalled`` makes it report a growing unsent buffer."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.written = bytearray()
        self.writes = 0
        self.stalled = stalled
        self.closing = False
        self.aborted = False
        self.close_codes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.written += data

    def get_write_buffer_size(self) -> int:
        return len(self.written) if self.stalled else 0

    def is_closing(self) -> bool:
        return self.closing or self.aborted

    def abort(self) -> None:
        self.aborted = True

    async def close(self, code: int, message: str) -> None:
        self.close_codes.append(code)
        self.closing = True

    def frames(self) -> list[tuple[int, bytes]]:
        return decode_frames(bytes(self.written))

    def messages(self) -> list[Any]:
        """Every text frame written so far, decoded as JSON."""
        return [jsoncodec.loads(p) for op, p in self.frames() if op == 0x1]


def fake_connect(manager: WebSocketManager, **kwargs: Any) -> tuple[Connection, FakeTransport]:
    """Register a connection backed by a :class:`FakeTransport`."""
    stalled = kwargs.pop("stalled", False)
    transport = FakeTransport(stalled=stalled)
    conn = manager.connect(transport, transport.close, **kwargs)
    return conn, transport
