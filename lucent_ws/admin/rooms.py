"""Room and member listings for the admin API that stay cheap with many rooms.

The manager answers for every room at once (``get_stats()`` builds a dict of
all of them: 8 ms and 6.7 MB of JSON at 50,000 rooms). Here the rooms are
walked ``SLICE`` at a time, yielding to the event loop between slices, and only
what an answer needs is kept: the N largest rooms, or one page of names. So no
admin answer holds the loop for more than one slice, however many rooms exist.
Rooms that appear or vanish during a walk may be missed or counted: each
answer is a snapshot taken over a few loop ticks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypedDict, TypeVar

from ..manager import WebSocketManager
from ..stats import Totals, cluster_totals, node_totals

__all__ = [
    "SLICE",
    "RoomTotals",
    "decode_cursor",
    "encode_cursor",
    "hub_totals",
    "members_page",
    "room_totals",
    "rooms_page",
]

T = TypeVar("T")

SLICE = 1000
"""Rooms (or members) handled per loop tick: a few tenths of a millisecond."""


class RoomTotals(TypedDict):
    """The largest rooms and the totals over all rooms."""

    top: list[tuple[str, int]]
    rooms: int
    memberships: int


def encode_cursor(key: str) -> str:
    """An opaque cursor naming the last item of a page."""
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    """The key a cursor names, or None if it is not one of ours."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        return raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return None


async def _slices(items: list[T]) -> AsyncIterator[list[T]]:
    """Yield ``items`` in slices of :data:`SLICE`, letting the loop run between them."""
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)
        yield items[start : start + SLICE]


def _by_size(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


async def room_totals(manager: WebSocketManager, top: int, *, local: bool = False) -> RoomTotals:
    """The ``top`` largest rooms (largest first, then by name), the room count and
    the sum of their member counts: cluster-wide, or this node's with ``local``."""
    names = manager.list_rooms()
    size: Callable[[str], int] = manager.room_size
    if local and manager.cluster.cluster_stats() is not None:
        view = manager.cluster.view

        def local_size(name: str) -> int:
            return manager.room_size(name) - view.room_size(name)

        size = local_size

    best: list[tuple[str, int]] = []
    rooms = memberships = 0
    async for chunk in _slices(names):
        sized = [(name, count) for name in chunk if (count := size(name)) > 0]
        rooms += len(sized)
        memberships += sum(count for _, count in sized)
        best = heapq.nsmallest(top, [*best, *sized], key=_by_size)
    return {"top": best, "rooms": rooms, "memberships": memberships}


async def _page(keys: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    """The ``limit`` smallest keys greater than ``after``, and the next page's cursor."""
    page: list[str] = []
    async for chunk in _slices(keys):
        fresh: Iterable[str] = chunk if after is None else (k for k in chunk if k > after)
        page = heapq.nsmallest(limit + 1, [*page, *fresh])
    more = len(page) > limit
    page = page[:limit]
    return page, (encode_cursor(page[-1]) if more and page else None)


async def rooms_page(
    manager: WebSocketManager, after: str | None, limit: int
) -> tuple[list[tuple[str, int]], str | None, int]:
    """One page of rooms by name after ``after``, with member counts; the next
    cursor (None on the last page) and the total number of rooms."""
    names = manager.list_rooms()
    page, cursor = await _page(names, after, limit)
    return [(name, manager.room_size(name)) for name in page], cursor, len(names)


async def members_page(
    manager: WebSocketManager,
    room: str,
    after: str | None,
    limit: int,
    meta: Callable[[str], dict[str, Any] | None],
) -> tuple[list[dict[str, Any]], str | None, int]:
    """One page of a room's members by id after ``after``, each with its metadata;
    the next cursor and the room's member count."""
    ids = manager.get_room_members(room)
    page, cursor = await _page(ids, after, limit)
    members = []
    for conn_id in page:
        found = meta(conn_id)
        if found is not None:
            members.append({"id": conn_id, "meta": found})
    return members, cursor, len(ids)


def hub_totals(manager: WebSocketManager) -> Totals:
    """Everything ``get_stats()`` says except the per-room dict, without walking the rooms.

    The same rule as :meth:`~lucent_ws.WebSocketManager.get_stats`
    (:func:`lucent_ws.stats.node_totals`, :func:`lucent_ws.stats.cluster_totals`).
    """
    totals = node_totals(len(manager), manager.counters, manager.heartbeat_active, manager.uptime)
    cluster = manager.cluster.cluster_stats()
    return totals if cluster is None else cluster_totals(totals, manager.cluster.view, cluster)
