"""The client requests of history rooms: ``join`` with a position, ``history``, ``ack`` (pure).

The session hands these over for v2 connections in rooms whose policy has
``history_size``. A join runs synchronously from the recovery to the last
replayed frame: no live message of the room can be queued for the client in
between, so the replay and the live messages that follow it hold every offset
once, in order. With a broker (offsets assigned by its backend) the join first
awaits what it must read from the backend (:mod:`lucent_ws.shared_reads`),
then runs the same synchronous step; a backend that cannot be reached answers
``unavailable``.
"""

from __future__ import annotations

from . import replies
from .connection import Connection
from .envelope import RoomMessage
from .errors import ProtocolError, Unavailable
from .manager import WebSocketManager
from .policy import RoomPolicy
from .protocol import ErrorCode, History, Join, Ref
from .recovery import RecoveryResult
from .shared_reads import finish_recovery, prepare_recovery, shared_page
from .streams import Published, since_of

__all__ = [
    "ack",
    "answer_history",
    "check_room_full",
    "join_history",
    "join_history_room",
    "publish",
]


def check_room_full(
    manager: WebSocketManager, room: str, policy: RoomPolicy, ref: Ref | None
) -> None:
    """Raise ``room_full`` when the room holds its policy's ``max_members``."""
    limit = policy.max_members
    if limit and manager.room_size(room) >= limit:
        raise ProtocolError(
            ErrorCode.ROOM_FULL, f"Room '{room}' is full: at most {limit} members", ref
        )


async def join_history(
    manager: WebSocketManager, conn: Connection, message: Join, policy: RoomPolicy
) -> None:
    """:func:`join_history_room`, on a single node or with a broker."""
    shared = manager.cluster.history
    if shared is None:
        join_history_room(manager, conn, message, policy)
        return
    room, ref, store = message.room, message.ref, manager.streams.store
    since = since_of(message.since)
    recover_max = manager.streams.recover_max
    plain = since is None or room in conn.rooms
    read: dict[int, bytes] = {}
    position = None
    try:
        # A reconnection's check may stop following a room without members while this
        # join awaits: follow it again (the step below must not await).
        for _ in range(3):
            if plain:
                await shared.follow(room, policy)
            else:
                assert since is not None
                read = await prepare_recovery(shared, store, room, policy, since, recover_max)
            position = shared.position(room)
            if position is not None:
                break
        else:
            raise Unavailable()
    except Unavailable as exc:
        raise ProtocolError(exc.code, exc.message, ref) from None
    if conn.closed:
        return
    if room not in conn.rooms:
        # Checked again: other joins may have filled the room while this one read.
        check_room_full(manager, room, policy, ref)
    if plain or since is None:
        manager.join_room(conn.id, room)
        manager.send_encoded(conn, replies.encode_joined_at(room, *position, ref))
        return
    result, frames = finish_recovery(
        shared, store, room, policy, since, read, recover_max, manager.headroom(conn) // 2
    )
    manager.join_room(conn.id, room)
    _send_recovery(manager, conn, room, ref, result, frames)


async def publish(
    manager: WebSocketManager,
    message: RoomMessage,
    ref: Ref | None,
    publish_id: str | None,
    exclude: tuple[str, ...],
) -> Published:
    """A client's broadcast, its offset assigned (``unavailable`` when it cannot be)."""
    try:
        return await manager.publish_confirmed(message, exclude, publish_id)
    except Unavailable as exc:
        raise ProtocolError(exc.code, exc.message, ref) from None


def join_history_room(
    manager: WebSocketManager, conn: Connection, message: Join, policy: RoomPolicy
) -> None:
    """Join ``conn`` to a history room; reply ``joined`` with its position, then the replay.

    Without ``since`` (or already a member), ``joined`` carries the room's epoch
    and top offset. With it, the missed messages are replayed all or not at all:
    at most the manager's ``recover_max`` of them, and at most half of what the
    connection may still queue, so a replay never makes it a slow consumer.
    """
    room, ref, streams = message.room, message.ref, manager.streams
    since = since_of(message.since)
    if since is None or room in conn.rooms:
        position = streams.position(room, policy)
        manager.join_room(conn.id, room)
        manager.send_encoded(conn, replies.encode_joined_at(room, *position, ref))
        return
    result, frames = streams.recover(room, policy, since, manager.headroom(conn) // 2)
    manager.join_room(conn.id, room)
    _send_recovery(manager, conn, room, ref, result, frames)


def _send_recovery(
    manager: WebSocketManager,
    conn: Connection,
    room: str,
    ref: Ref | None,
    result: RecoveryResult,
    frames: list[bytes],
) -> None:
    reason = None if result.reason is None else str(result.reason)
    manager.send_encoded(
        conn,
        replies.encode_joined_at(
            room,
            result.epoch,
            result.offset,
            ref,
            recovered=result.recovered,
            missed=result.missed,
            reason=reason,
        ),
    )
    for frame in frames:
        manager.send_encoded(conn, frame)


async def answer_history(manager: WebSocketManager, conn: Connection, message: History) -> bytes:
    """The ``history`` answer for a member of a history room (from the backend with a broker)."""
    room, ref = message.room, message.ref
    policy = manager.policies.for_room(room)
    if not policy.history_size:
        raise ProtocolError(ErrorCode.HISTORY_DISABLED, f"Room '{room}' has no history", ref)
    if room not in conn.rooms:
        raise ProtocolError(ErrorCode.NOT_MEMBER, f"Not a member of room '{room}'", ref)
    since, shared = since_of(message.since), manager.cluster.history
    if shared is None:
        position, messages = manager.streams.page(room, policy, since, message.limit)
    else:
        try:
            position, messages = await shared_page(shared, room, policy, since, message.limit)
        except Unavailable as exc:
            raise ProtocolError(exc.code, exc.message, ref) from None
    return replies.encode_history(room, position.epoch, position.offset, messages, ref)


def ack(ref: Ref, published: Published) -> bytes:
    """The ``ack`` of a broadcast: with its position in a history room."""
    if published.offset is None or published.epoch is None:
        return replies.encode_ack(ref, published.delivered)
    return replies.encode_ack_at(
        ref,
        published.delivered,
        published.offset,
        published.epoch,
        duplicate=published.duplicate,
    )
