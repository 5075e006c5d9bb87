"""Sequenced broadcast payloads.

Each broadcast payload carries a marker ``|SSSSSSSS:TTTTTTTTTTTTTTTTTTT`` (sequence number
and send time in ``time.monotonic_ns``, fixed width) inside a JSON string, so it survives
any server's re-encoding byte for byte and every delivered frame of a phase has the same
length. The reader (``bench/reader.c``) finds markers in the raw stream without parsing
frames or JSON; a ``|`` not followed by the marker's shape (a frame length byte can be
124) is skipped.
"""

from __future__ import annotations

import time

import orjson

FILLER = "realtime fan-out benchmark payload"


def payload(seq: int) -> dict[str, str]:
    """The JSON payload of broadcast ``seq`` stamped with now (its send time)."""
    return {"k": f"|{seq:08d}:{time.monotonic_ns():019d}", "text": FILLER}


def broadcast_frame_body(room: str, seq: int, ref: int) -> bytes:
    """The client ``broadcast`` message for ``seq``, encoded now (stamped with now)."""
    return orjson.dumps({"type": "broadcast", "room": room, "payload": payload(seq), "ref": ref})
