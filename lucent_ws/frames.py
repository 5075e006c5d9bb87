"""Server-to-client WebSocket frames (RFC 6455), built once and written verbatim.

Server frames are never masked, and lucent_ws never compresses, so a frame is
a header followed by the payload and can be shared by every recipient.
"""

from __future__ import annotations

import struct

__all__ = ["OP_PING", "OP_TEXT", "build_frame", "text_frame"]

OP_TEXT = 0x1
OP_PING = 0x9

_FIN = 0x80
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def build_frame(opcode: int, payload: bytes) -> bytes:
    """Return one final, unmasked frame with ``opcode`` carrying ``payload``."""
    first = _FIN | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = _LEN16.pack(first, 126, size)
    else:
        header = _LEN64.pack(first, 127, size)
    return header + payload


def text_frame(payload: bytes) -> bytes:
    """Return a text frame carrying UTF-8 ``payload``."""
    return build_frame(OP_TEXT, payload)


PING_FRAME = build_frame(OP_PING, b"")
"""A protocol PING frame with an empty body (browsers answer it natively)."""
