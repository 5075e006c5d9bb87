"""Reads of history rooms whose offsets a broker assigns: pages and recoveries (pure).

With a broker (:class:`~lucent_ws.cluster.SharedHistory`), a room's kept
messages are in the backend's stream; this node also keeps what it delivered
(its mirror, :class:`~lucent_ws.history.HistoryStore`). A recovery is served
from the mirror when it holds every missed offset in the room's epoch, and
otherwise from the backend's stream followed by the mirror's newest entries,
cut at the last offset this node delivered: the messages that follow arrive
live, so the replay and the live messages hold each offset once, in order.
"""

from __future__ import annotations

from . import jsoncodec
from .cluster import SharedHistory
from .envelope import envelope_head, frame_body
from .errors import ConfigurationError
from .history import HistoryStore, Position
from .policy import RoomPolicy
from .recovery import RecoveryReason, RecoveryResult
from .streams import REPLAY_OVERHEAD

__all__ = ["CATCH_UP_TIMEOUT", "Replay", "finish_recovery", "prepare_recovery", "shared_page"]

CATCH_UP_TIMEOUT = 2.0
"""Seconds a recovery waits for this node to deliver what the backend read holds."""

Replay = tuple[RecoveryResult, list[bytes]]


async def shared_page(
    shared: SharedHistory,
    room: str,
    policy: RoomPolicy,
    since: Position | None,
    limit: int | None,
) -> tuple[Position, bytes]:
    """A ``history`` page read from the backend: its position and the JSON array."""
    if not policy.history_size:
        raise ConfigurationError(f"room {room!r} keeps no history")
    count = policy.history_size if limit is None else max(0, min(limit, policy.history_size))
    if since is not None:
        read = await shared.read(room, policy, since.offset, count)
        if read.epoch != since.epoch and since.offset:
            read = await shared.read(room, policy, 0, count)  # another epoch: every kept one
    else:
        top = (await shared.read(room, policy, 0, 0)).top
        read = await shared.read(room, policy, max(0, top - count), count)
    epoch = jsoncodec.dumps(read.epoch)
    items = b",".join(
        frame_body(envelope_head(room, e.sender, e.payload), e.offset, epoch) for e in read.entries
    )
    return Position(read.epoch, read.top), b"[" + items + b"]"


async def prepare_recovery(
    shared: SharedHistory,
    store: HistoryStore,
    room: str,
    policy: RoomPolicy,
    since: Position,
    recover_max: int,
) -> dict[int, bytes]:
    """Read what the mirror may lack: the backend's kept heads after ``since`` by offset.

    Empty when the mirror holds every missed offset (or the recovery fails
    whatever the backend holds); then :func:`finish_recovery` decides alone.
    """
    position = await shared.follow(room, policy)
    if since.epoch != position.epoch or since.offset >= position.offset:
        return {}
    if _mirror_covers(store, room, policy, position, since.offset):
        return {}
    if position.offset - since.offset > recover_max:
        return {}
    read = await shared.read(room, policy, since.offset, recover_max + 1)
    if read.epoch != since.epoch:
        return {}
    await shared.caught_up(room, read.top, CATCH_UP_TIMEOUT)
    return {e.offset: envelope_head(room, e.sender, e.payload) for e in read.entries}


def finish_recovery(
    shared: SharedHistory,
    store: HistoryStore,
    room: str,
    policy: RoomPolicy,
    since: Position,
    read: dict[int, bytes],
    recover_max: int,
    max_bytes: int,
) -> Replay:
    """All the missed messages up to what this node delivered, as replay frames, or none.

    Synchronous, so that the caller joins the room in the same step: live
    messages after it are exactly the offsets after the replay.
    """
    position = shared.position(room)
    assert position is not None  # prepare_recovery followed the room
    if since.epoch != position.epoch:
        return RecoveryResult.failed(RecoveryReason.EPOCH_CHANGED, 0, position), []
    missed = position.offset - since.offset
    if since.offset < 0 or missed < 0:
        return RecoveryResult.failed(RecoveryReason.AHEAD, 0, position), []
    if missed > recover_max:
        return RecoveryResult.failed(RecoveryReason.TOO_MANY, missed, position), []
    heads: list[tuple[int, bytes]] = []
    mirror = {}
    if room in store and store.position(room, policy).epoch == position.epoch:
        mirror = {e.offset: e.data for e in store.since(room, since.offset, position.epoch)}
    for offset in range(since.offset + 1, position.offset + 1):
        head = mirror.get(offset) or read.get(offset)
        if head is None:
            return RecoveryResult.failed(RecoveryReason.TOO_OLD, missed, position), []
        heads.append((offset, head))
    budget = max(0, max_bytes - recover_max * REPLAY_OVERHEAD)
    if sum(len(head) for _, head in heads) > budget:
        return RecoveryResult.failed(RecoveryReason.TOO_LARGE, missed, position), []
    epoch = jsoncodec.dumps(position.epoch)
    frames = [frame_body(head, offset, epoch, replay=True) for offset, head in heads]
    return RecoveryResult(True, missed, None, (), position), frames


def _mirror_covers(
    store: HistoryStore, room: str, policy: RoomPolicy, position: Position, after: int
) -> bool:
    if room not in store or store.position(room, policy) != position:
        return False
    kept = store.since(room, after, position.epoch, 1)
    return bool(kept) and kept[0].offset == after + 1
