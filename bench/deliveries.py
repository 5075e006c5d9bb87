"""Sequenced payloads and per-connection delivery accounting.

Each broadcast payload carries a marker ``|SSSSSSSS:TTTTTTTTTTTTTTTTTTT`` (sequence number
and send time in ``time.monotonic_ns``, fixed width) inside a JSON string, so it survives
any server's re-encoding byte for byte. Receivers find markers in the raw stream with
``bytes.find`` instead of parsing frames or JSON; a ``|`` that is not followed by the
marker's shape (a frame length byte can be 124) is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson

MARK_LEN = 1 + 8 + 1 + 19
_COLON = ord(":")

FILLER = "realtime fan-out benchmark payload"


def payload(seq: int, sent_ns: int | None = None) -> dict[str, str]:
    """The JSON payload of broadcast ``seq`` stamped with its send time."""
    if sent_ns is None:
        sent_ns = time.monotonic_ns()
    return {"k": f"|{seq:08d}:{sent_ns:019d}", "text": FILLER}


def broadcast_frame_body(room: str, seq: int, ref: int) -> bytes:
    """The client ``broadcast`` message for ``seq``, encoded now (stamped with now)."""
    return orjson.dumps({"type": "broadcast", "room": room, "payload": payload(seq), "ref": ref})


@dataclass
class Tally:
    """Deliveries accounted across all receivers, and when the last bytes arrived."""

    delivered: int = 0
    last_rx_ns: int = 0

    def add(self, n: int) -> None:
        """Count ``n`` deliveries."""
        self.delivered += n


@dataclass
class SeqTracker:
    """Order accounting of one receiver: counts, gaps, duplicates and reorders."""

    expected: int
    tally: Tally
    received: int = 0
    duplicated: int = 0
    reordered: int = 0
    missing: set[int] = field(default_factory=set)

    def account(self, seqs: list[int]) -> None:
        """Account for sequence numbers read in this order."""
        n = len(seqs)
        exp = self.expected
        in_order = seqs[0] == exp and seqs[-1] == exp + n - 1
        if in_order and (n < 3 or seqs == list(range(exp, exp + n))):
            self.expected = exp + n
        else:
            for s in seqs:
                if s == self.expected:
                    self.expected += 1
                elif s > self.expected:
                    self.missing.update(range(self.expected, s))
                    self.expected = s + 1
                elif s in self.missing:
                    self.missing.discard(s)
                    self.reordered += 1
                else:
                    self.duplicated += 1
        self.received += n
        self.tally.add(n)

    def lost(self, end: int) -> int:
        """Sequence numbers below ``end`` never received."""
        return len(self.missing) + max(0, end - self.expected)


def scan_times(buf: bytes) -> tuple[list[tuple[int, int]], bytes]:
    """(sequence number, send ns) of the markers in ``buf`` and the unfinished marker."""
    found: list[tuple[int, int]] = []
    find = buf.find
    pos = find(b"|")
    end = len(buf) - MARK_LEN
    while pos >= 0:
        if pos > end:
            return found, buf[pos:]
        if buf[pos + 9] == _COLON and buf[pos + 1 : pos + 9].isdigit():
            found.append((int(buf[pos + 1 : pos + 9]), int(buf[pos + 10 : pos + MARK_LEN])))
            pos = find(b"|", pos + MARK_LEN)
        else:
            pos = find(b"|", pos + 1)
    return found, b""


def latencies(tracker: SeqTracker, chunks: list[tuple[int, bytes]]) -> list[int]:
    """Account recorded (arrival ns, bytes) chunks; return one latency in ns per message."""
    out: list[int] = []
    tail = b""
    for t, data in chunks:
        found, tail = scan_times(tail + data if tail else data)
        if found:
            out.extend(t - sent for _, sent in found)
            tracker.account([seq for seq, _ in found])
    return out
