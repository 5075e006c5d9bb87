"""Minimal WebSocket framing for the load client (RFC 6455, text frames, no extensions).

Client frames carry an all-zero mask key: valid on the wire and free to apply.
"""

from __future__ import annotations

_MASK = b"\x00\x00\x00\x00"

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def handshake_request(host: str, port: int, path: str) -> bytes:
    """The HTTP upgrade request opening a WebSocket on ``path``."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {HANDSHAKE_KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final, masked client frame carrying ``payload``."""
    n = len(payload)
    first = bytes((0x80 | opcode,))
    if n < 126:
        header = first + bytes((0x80 | n,))
    elif n < 65536:
        header = first + b"\xfe" + n.to_bytes(2, "big")
    else:
        header = first + b"\xff" + n.to_bytes(8, "big")
    return header + _MASK + payload


def close_frame(code: int = 1000) -> bytes:
    """A client close frame with ``code``."""
    return client_frame(code.to_bytes(2, "big"), OP_CLOSE)


def parse_frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Remove every complete server frame from ``buf``; return (opcode, payload) pairs."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(buf)
    while end - pos >= 2:
        b0 = buf[pos]
        n = buf[pos + 1] & 0x7F
        head = 2
        if n == 126:
            if end - pos < 4:
                break
            n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            head = 4
        elif n == 127:
            if end - pos < 10:
                break
            n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            head = 10
        if end - pos < head + n:
            break
        out.append((b0 & 0x0F, bytes(buf[pos + head : pos + head + n])))
        pos += head + n
    del buf[:pos]
    return out
