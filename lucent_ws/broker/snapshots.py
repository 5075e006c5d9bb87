"""Reading the other nodes' stored membership into this node's view, and the task runner.

A node reads another node's snapshot (its lease and membership hash) when that
node says hello, when one of its sequence numbers was skipped, after an outage
and every third of the lease (:class:`~lucent_ws.broker.Broker`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from .. import jsoncodec
from ..replica import ClusterView
from . import wire
from .backend import Backend, Writes

__all__ = ["first_failure", "read_all_nodes", "read_node"]

logger = logging.getLogger("lucent_ws.broker")


async def read_all_nodes(backend: Backend, view: ClusterView, own_id: str) -> None:
    """Read every registered node's snapshot; drop from ``view`` the nodes gone."""
    members = await backend.node_ids()
    members.discard(own_id)
    for node_id in view.node_ids():
        # A node not confirmed since an outage may not have registered again yet
        # (a Redis that lost its data): its lease in the view decides, so presence
        # never announces a leave and a join for members that never left.
        if node_id not in members and not view.suspended(node_id):
            view.drop(node_id)
    for node_id in members:
        await read_node(backend, view, node_id)


async def read_node(backend: Backend, view: ClusterView, node_id: str) -> None:
    """Read one node's snapshot into ``view`` (or forget it if its lease is gone)."""
    state = await backend.read_node(node_id)
    if state is None:
        if view.suspended(node_id):
            return  # it may be registering again right now: its lease in the view decides
        view.drop(node_id)
        await backend.write(Writes(node_id, forget=True))
        return
    records, malformed = wire.decode_snapshot(state.fields)
    if malformed:
        logger.warning("node %s: %d malformed membership fields skipped", node_id, malformed)
    try:
        stats = jsoncodec.loads(state.lease)
    except ValueError:
        stats = {}
    view.apply_snapshot(
        node_id, state.seq, records, state.ttl, stats if isinstance(stats, dict) else {}
    )


async def first_failure(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run coroutines together until one ends; cancel the rest; re-raise its error."""
    tasks = [asyncio.ensure_future(coro) for coro in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None:
            raise exc
    raise ConnectionError("broker subscription ended")
