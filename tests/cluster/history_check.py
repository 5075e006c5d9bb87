"""What the history-over-Redis tests check: each client's received positions against
the room's Redis Stream, read directly with XRANGE.

Key layout (lucent_ws/broker/redis.py): the Stream ``P:hist:<room>`` holds one entry
per published message under the stream id ``<offset>-1``, with the publish id in the
field ``i``; the hash ``P:hpos:<room>`` holds the room's epoch ``e`` and top offset ``o``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .history_clients import Subscriber


@dataclass(frozen=True)
class RoomStream:
    """A room's Stream as Redis holds it: its epoch and (offset, publish id) entries."""

    room: str
    epoch: str | None
    entries: list[tuple[int, str | None]]

    @property
    def offsets(self) -> list[int]:
        return [offset for offset, _ in self.entries]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_stream(redis: Any, prefix: str, room: str) -> RoomStream:
    """XRANGE the room's whole Stream and read its position hash."""
    raw = await redis.xrange(f"{prefix}:hist:{room}")
    entries = []
    for stream_id, fields in raw:
        offset = int(_text(stream_id).split("-", 1)[0])
        fields = {_text(k): v for k, v in fields.items()}
        publish_id = _text(fields["i"]) if "i" in fields else None
        entries.append((offset, publish_id))
    position = await redis.hgetall(f"{prefix}:hpos:{room}")
    position = {_text(k): _text(v) for k, v in position.items()}
    return RoomStream(room, position.get("e"), entries)


@dataclass
class Tally:
    """The counts a history test checked and prints."""

    clients: int = 0
    memberships: int = 0
    publishes: int = 0
    stream_entries: int = 0
    deliveries: int = 0
    replayed: int = 0
    lost: int = 0
    doubled: int = 0
    reordered: int = 0
    stray: int = 0
    wrong_epoch: int = 0
    recoveries: int = 0
    not_recovered: int = 0
    stream_gaps: int = 0
    ids_missing: int = 0
    ids_repeated: int = 0
    ack_mismatches: int = 0
    notes: list[str] = field(default_factory=list)

    def failures(self) -> int:
        return (
            self.lost + self.doubled + self.reordered + self.stray + self.wrong_epoch
            + self.not_recovered + self.stream_gaps + self.ids_missing + self.ids_repeated
            + self.ack_mismatches
        )  # fmt: skip

    def line(self) -> str:
        names = [name for name in self.__dataclass_fields__ if name != "notes"]
        return ", ".join(f"{name} {getattr(self, name):,}" for name in names)


def check_streams(
    streams: Mapping[str, RoomStream],
    published: Sequence[str],
    acks: Mapping[str, Sequence[Mapping[str, Any]]],
    tally: Tally,
) -> None:
    """Each Stream: offsets 1..top without a gap, one entry per publish id, every ack's
    offset the one its id holds in the Stream."""
    where: dict[str, tuple[str, int]] = {}
    seen: Counter[str] = Counter()
    for stream in streams.values():
        tally.stream_entries += len(stream.entries)
        offsets = stream.offsets
        if offsets != list(range(1, len(offsets) + 1)):
            tally.stream_gaps += 1
            tally.notes.append(f"{stream.room}: offsets not 1..{len(offsets)}")
        for offset, publish_id in stream.entries:
            if publish_id is not None:
                seen[publish_id] += 1
                where.setdefault(publish_id, (stream.room, offset))
    tally.publishes = len(published)
    tally.ids_missing = sum(1 for publish_id in published if publish_id not in seen)
    tally.ids_repeated = sum(count - 1 for count in seen.values())
    for publish_id in published:
        for ack in acks.get(publish_id, ()):
            room_offset = where.get(publish_id)
            stream = streams.get(room_offset[0]) if room_offset else None
            if (
                room_offset is None
                or stream is None
                or ack.get("offset") != room_offset[1]
                or ack.get("epoch") != stream.epoch
            ):
                tally.ack_mismatches += 1


def check_subscribers(
    subscribers: Iterable[Subscriber], streams: Mapping[str, RoomStream], tally: Tally
) -> None:
    """Per client and room: from its first join's top on, the offsets it received are
    exactly the Stream's that follow, once each, in order, in the Stream's epoch."""
    for sub in subscribers:
        tally.clients += 1
        for room in sub.rooms:
            tally.memberships += 1
            stream = streams[room]
            start = sub.first[room][0] if room in sub.first else 0
            expected = [offset for offset in stream.offsets if offset > start]
            got = sub.received.get(room, [])
            tally.deliveries += len(got)
            tally.replayed += sum(1 for d in got if d.replay)
            tally.wrong_epoch += sum(1 for d in got if d.epoch != stream.epoch)
            offsets = [d.offset for d in got]
            expected_set = set(expected)
            tally.lost += len(expected_set - set(offsets))
            tally.doubled += len(offsets) - len(set(offsets))
            tally.stray += sum(1 for offset in set(offsets) if offset not in expected_set)
            tally.reordered += sum(1 for a, b in itertools.pairwise(offsets) if b < a)
