"""The generic cluster over a storage backend: membership replication, leases, delivery.

:class:`Broker` implements :class:`~lucent_ws.cluster.Cluster` for any
:class:`~lucent_ws.broker.backend.Backend`. Each node:

- writes its membership as it changes (one small hash field per change) and
  publishes the same changes on the bus with its sequence number;
- holds a lease it renews every third of ``lease``; a node killed without a word
  drops out of the others' view when its lease runs out;
- keeps a :class:`~lucent_ws.replica.ClusterView` of the others: filled from
  their stored snapshots (on start, on their ``hello``, when a sequence number
  is skipped, and every third of the lease), kept current by their changes;
- hands what other nodes publish for its connections to its
  :class:`~lucent_ws.cluster.LocalNode`.

Publishing never awaits in the caller: messages go into a queue that one task
writes in order, one round trip per batch, so each node's messages reach every
other node in the order they were sent. While the backend is unreachable,
nodes serve their own clients; what they publish meanwhile is counted as
``undelivered`` and left out of the counts the send methods return. The broker
reconnects with capped exponential backoff, re-registers and resynchronises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Collection

from ..cluster import HistoryTarget, LocalNode
from ..connection import Connection
from ..envelope import RoomMessage
from ..errors import ConfigurationError
from ..replica import CONNECT, GONE, JOIN, LEAVE, META, Change, ClusterView
from ..stats import ClusterStats, NodeStats
from . import wire
from .backend import Backend, Writes
from .history import BrokerHistory
from .membership import lease_value, own_figures, remote_figures, snapshot_fields
from .queue import PublishQueue
from .snapshots import first_failure, read_all_nodes, read_node

__all__ = ["Broker"]

logger = logging.getLogger("lucent_ws.broker")


def _new_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Broker:
    """A :class:`~lucent_ws.cluster.Cluster` replicated through a storage ``backend``.

    ``lease`` (seconds) bounds how long a node that died without a word stays
    in the others' membership and stats. ``max_queue`` caps messages waiting
    for the backend; beyond it they are counted as undelivered.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        lease: float = 15.0,
        node_id: str | None = None,
        max_queue: int = 100_000,
        reconnect_max: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease <= 0:
            raise ConfigurationError(f"lease must be positive, not {lease}")
        self.backend = backend
        self.lease = lease
        self.reconnect_max = reconnect_max
        self._node_id = node_id or _new_node_id()
        self._clock = clock
        self._view = ClusterView(clock=clock)
        self._node: LocalNode | None = None
        self._queue = PublishQueue(max_queue, clock, node_id=self._node_id)
        self._up_event = asyncio.Event()
        self._resync = asyncio.Event()
        self._resync_nodes: set[str] = set()
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self.history = BrokerHistory(backend, self._node_id, self._queue, self._history_target)
        """History rooms numbered by the backend (:mod:`lucent_ws.broker.history`)."""

    # --- Cluster protocol ------------------------------------------------------------

    @property
    def node_id(self) -> str:
        """This node's id: host, process id and a random suffix."""
        return self._node_id

    @property
    def view(self) -> ClusterView:
        """The other nodes' membership."""
        return self._view

    @property
    def up(self) -> bool:
        """True while the backend is reachable and this node is registered."""
        return self._queue.open

    def connected(self, conn: Connection) -> None:
        """Queue the new connection's record."""
        self._change((CONNECT, conn.id, conn.meta))

    def removed(self, conn_id: str, rooms: Collection[str]) -> None:
        """Queue the removal of the connection and its memberships."""
        self._change((GONE, conn_id, tuple(rooms)))

    def joined(self, conn_id: str, room: str) -> None:
        """Queue one membership."""
        self._change((JOIN, conn_id, room))

    def left(self, conn_id: str, room: str) -> None:
        """Queue the end of one membership."""
        self._change((LEAVE, conn_id, room))

    def meta_changed(self, conn: Connection) -> None:
        """Queue the connection's new metadata."""
        self._change((META, conn.id, conn.meta))

    def publish_room(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        """Queue a room broadcast; returns the room's members elsewhere, 0 if down."""
        if not self._enqueue(wire.encode_room(self._node_id, message, exclude)):
            return 0
        return self._view.room_size(message.room, exclude)

    def publish_all(self, data: bytes, exclude: frozenset[str]) -> int:
        """Queue a broadcast to everyone; returns the connections elsewhere, 0 if down."""
        if not self._enqueue(wire.encode(self._node_id, wire.ALL, data, x=list(exclude))):
            return 0
        return self._view.connection_count(exclude)

    def publish_direct(self, conn_id: str, data: bytes) -> bool:
        """Queue a message for a connection on another node; False if down."""
        return self._enqueue(wire.encode(self._node_id, wire.TO, data, id=conn_id))

    def publish_disconnect(self, conn_id: str, code: int, message: str) -> bool:
        """Queue a kick for a connection on another node; False if down."""
        return self._enqueue(wire.encode(self._node_id, wire.KICK, id=conn_id, c=code, m=message))

    def cluster_stats(self) -> ClusterStats:
        """This node's id, ``up``/``down``, undelivered count and every node's figures."""
        nodes: dict[str, NodeStats] = {}
        if self._node is not None:
            nodes[self._node_id] = own_figures(self._node.local_stats(), self._queue.undelivered)
        for node in self._view.nodes():
            nodes[node.node_id] = remote_figures(node)
        return {
            "node": self._node_id,
            "broker": "up" if self._queue.open else "down",
            "undelivered": self._queue.undelivered,
            "nodes": nodes,
        }

    def _history_target(self) -> HistoryTarget | None:
        node = self._node
        return None if node is None else node.history_target()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, node: LocalNode) -> None:
        """Attach to ``node`` and connect; returns after the first attempt.

        If the backend is unreachable the node still starts, serves its own
        clients and keeps retrying in the background.
        """
        if self._task is not None:
            raise RuntimeError("broker already started")
        self._node = node
        node.attach_cluster(self)
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"lucent_ws broker {self._node_id}"
        )
        await self._attempted.wait()

    async def stop(self, timeout: float = 2.0) -> None:
        """Flush what is queued, deregister, disconnect and detach from the node."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._queue.open:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(timeout):
                    await self._queue.drained()
                    bye = wire.encode(self._node_id, wire.BYE)
                    await self.backend.write(
                        Writes(self._node_id, forget=True, messages=[bye], atomic=True)
                    )
        self._queue.open = False
        self._up_event.clear()
        await self.history.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        node, self._node = self._node, None
        if node is not None and node.cluster is self:
            node.attach_cluster(None)

    async def wait_until_up(self, timeout: float = 10.0) -> None:
        """Wait until the backend is reachable and this node is registered (tests, tools)."""
        async with asyncio.timeout(timeout):
            await self._up_event.wait()

    # --- queueing --------------------------------------------------------------------

    def _change(self, change: Change) -> None:
        if self._queue.open:
            self._queue.put(change)

    def _enqueue(self, message: bytes) -> bool:
        return self._queue.put(message)

    # --- the backend connection's life -----------------------------------------------

    async def _supervise(self) -> None:
        delay = 0.1
        while True:
            started = self._clock()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._queue.went_down(self.backend.name, exc)
            finally:
                self._attempted.set()
            if self._clock() - started > self.lease:
                delay = 0.1
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.reconnect_max)

    async def _session(self) -> None:
        backend = self.backend
        try:
            await backend.connect()
            # What this node knew of the others predates the outage: a node it still
            # lists may not have resubscribed yet, and counting it would claim deliveries
            # that never happen. Confirm each from the backend before counting it again.
            self._view.suspend()
            await self._register()
            self._up_event.set()
            self._queue.came_up(self._node_id, self.backend.name)
            self._attempted.set()
            await self._resync_all()
            self.history.reconnected()
            await first_failure(self._publisher(), self._subscriber(), self._ticker())
        finally:
            self._up_event.clear()
            self._queue.close()
            await backend.close()

    async def _register(self) -> None:
        """Write this node's whole membership, take the lease, announce it."""
        node = self._node
        assert node is not None
        # From here on changes are queued; they are written after this snapshot.
        self._queue.open = True
        self._seq += 1
        fields = snapshot_fields(node.get_connection(c) for c in node.connection_ids())
        writes = Writes(
            self._node_id,
            replace=True,
            set_fields=fields,
            seq=self._seq,
            lease=self._lease_value(node),
            lease_ttl=self.lease,
            messages=[wire.encode(self._node_id, wire.HELLO, s=self._seq)],
            atomic=True,
        )
        try:
            await self.backend.write(writes)
        except BaseException:
            self._queue.open = False
            raise

    def _lease_value(self, node: LocalNode) -> bytes:
        return lease_value(own_figures(node.local_stats(), self._queue.undelivered))

    # --- tasks -----------------------------------------------------------------------

    async def _publisher(self) -> None:
        while True:
            await self._queue.write(await self._queue.take(), self.backend, self._next_seq)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _subscriber(self) -> None:
        async for message in self.backend.messages():
            try:
                self._on_message(message)
            except (ValueError, TypeError, KeyError) as exc:
                logger.warning("ignoring a malformed bus message: %s", exc)

    def _on_message(self, data: bytes) -> None:
        header, body = wire.decode(data)
        sender = header["n"]
        node = self._node
        kind = header.get("t")
        if kind == wire.ROOM and "o" in header:  # a history room: every node sequences it
            if node is not None:
                exclude = frozenset(header.get("x") or ())
                self.history.on_bus(wire.decode_room(header, body), exclude)
            return
        if sender == self._node_id or node is None:
            return
        if kind == wire.ROOM:
            node.deliver_to_room(wire.decode_room(header, body), frozenset(header.get("x") or ()))
        elif kind == wire.ALL:
            node.deliver_to_all(body, frozenset(header.get("x") or ()))
        elif kind == wire.TO:
            node.deliver_to(str(header["id"]), body)
        elif kind == wire.KICK:
            node.kick(str(header["id"]), int(header["c"]), str(header["m"]))
        elif kind == wire.CONN:
            changes = wire.decode_changes(body)
            if self._view.apply_changes(sender, int(header["s"]), changes, self.lease):
                self._request_resync(sender)
        elif kind == wire.HELLO:
            self._request_resync(sender)
        elif kind == wire.BYE:
            self._view.drop(sender)

    def _request_resync(self, node: str) -> None:
        self._resync_nodes.add(node)
        self._resync.set()

    async def _ticker(self) -> None:
        period = self.lease / 3
        next_tick = self._clock() + period
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_tick - self._clock())):
                    await self._resync.wait()
            if self._clock() >= next_tick:
                next_tick = self._clock() + period
                await self._refresh_lease()
                await self._resync_all()
                self.history.tick()
            else:
                self._resync.clear()
                nodes, self._resync_nodes = self._resync_nodes, set()
                for node in nodes:
                    await self._resync_node(node)

    async def _refresh_lease(self) -> None:
        node = self._node
        assert node is not None
        if not await self.backend.renew(self._node_id, self._lease_value(node), self.lease):
            # The lease lapsed (the backend lost it, or this node stalled past it), and
            # others may have pruned this node: write everything again. Changes still
            # queued are written after the snapshot; each is idempotent.
            logger.warning("node %s lost its lease; registering again", self._node_id)
            await self._register()

    async def _resync_all(self) -> None:
        self._resync.clear()
        self._resync_nodes.clear()
        await read_all_nodes(self.backend, self._view, self._node_id)

    async def _resync_node(self, node_id: str) -> None:
        await read_node(self.backend, self._view, node_id)
