"""An in-process backend: several nodes in one process share rooms without Redis.

For tests and single-process experiments: every :class:`MemoryBackend` created
from the same :class:`MemoryStore` sees the same bus, hashes, leases and node
set. :meth:`MemoryStore.fail` makes it unreachable, like a Redis outage, and
:meth:`MemoryStore.recover` (``empty=True``) brings it back with every key lost,
history streams included, like a Redis restarted without persistence. History
streams follow the Redis scripts' semantics (:mod:`lucent_ws.broker.redis`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..errors import BrokerError
from . import wire
from .backend import Appended, HistoryAppend, NodeState, StreamEntry, StreamRead, Writes
from .replication import Broker

__all__ = ["MemoryBackend", "MemoryBroker", "MemoryStore"]


@dataclass(slots=True)
class _Node:
    seq: int = 0
    fields: dict[str, bytes] = field(default_factory=dict)
    lease: bytes | None = None
    expires_at: float = 0.0


@dataclass(slots=True)
class _Stream:
    epoch: str
    top: int = 0
    entries: deque[StreamEntry] = field(default_factory=deque)
    ids: dict[str, int] = field(default_factory=dict)
    expires_at: float = 0.0


class MemoryStore:
    """The shared state of an in-process cluster."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.nodes: dict[str, _Node] = {}
        self.members: set[str] = set()
        self.subscribers: set[asyncio.Queue[bytes | None]] = set()
        self.down = False
        self.published = 0
        """Bus messages published so far."""
        self.bytes_written = 0
        """Bytes of fields, leases and bus messages written so far."""
        self.streams: dict[str, _Stream] = {}
        """History rooms' streams by room."""
        self.drop_history_messages = 0
        """Bus messages of history appends still to lose on the way (tests: a gap)."""

    def fail(self) -> None:
        """Become unreachable: every subscriber loses its connection."""
        self.down = True
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()

    def recover(self, *, empty: bool = False) -> None:
        """Become reachable again (``empty``: with every key lost)."""
        self.down = False
        if empty:
            self.nodes.clear()
            self.members.clear()
            self.streams.clear()

    def check(self) -> None:
        """Raise :class:`BrokerError` while down."""
        if self.down:
            raise BrokerError("memory store is down")

    def stream(self, room: str) -> _Stream | None:
        """A room's live stream (None if it has none, or it expired)."""
        stream = self.streams.get(room)
        if stream is not None and stream.expires_at <= self._clock():
            del self.streams[room]
            return None
        return stream

    def new_stream(self, room: str, epoch: str, ttl: float) -> _Stream:
        """A room's stream created afresh: ``epoch``, top 0."""
        stream = self.streams[room] = _Stream(epoch, expires_at=self._clock() + ttl)
        return stream

    def broadcast(self, message: bytes) -> None:
        """Publish one bus message to every subscriber."""
        self.published += 1
        self.bytes_written += len(message)
        for queue in self.subscribers:
            queue.put_nowait(message)

    def lease_ttl(self, node: str) -> float | None:
        """Seconds left on a node's lease, None if it has none."""
        state = self.nodes.get(node)
        if state is None or state.lease is None:
            return None
        ttl = state.expires_at - self._clock()
        return ttl if ttl > 0 else None


class MemoryBackend:
    """A :class:`~lucent_ws.broker.backend.Backend` over a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._queue: asyncio.Queue[bytes | None] | None = None

    @property
    def name(self) -> str:
        """``memory``."""
        return "memory"

    async def connect(self) -> None:
        """Subscribe to the store's bus."""
        self.store.check()
        self._queue = asyncio.Queue()
        self.store.subscribers.add(self._queue)

    async def close(self) -> None:
        """Unsubscribe."""
        if self._queue is not None:
            self.store.subscribers.discard(self._queue)
            self._queue = None

    def drop_subscription(self) -> None:
        """Lose this node's subscription, like its connection to Redis breaking (tests)."""
        queue, self._queue = self._queue, None
        if queue is not None:
            self.store.subscribers.discard(queue)
            queue.put_nowait(None)

    async def messages(self) -> AsyncIterator[bytes]:
        """Bus messages until the store fails."""
        queue = self._queue
        if queue is None:
            raise BrokerError("memory backend not connected")
        while True:
            message = await queue.get()
            if message is None:
                raise BrokerError("memory store went down")
            yield message

    async def write(self, writes: Writes) -> None:
        """Apply ``writes`` at once (it is always atomic here)."""
        store = self.store
        store.check()
        node = writes.node
        if writes.forget:
            store.nodes.pop(node, None)
            store.members.discard(node)
        state = store.nodes.get(node)
        if state is None and (writes.set_fields or writes.seq is not None or writes.lease):
            state = store.nodes[node] = _Node()
        if state is not None:
            if writes.replace:
                state.fields.clear()
            for name in writes.del_fields:
                state.fields.pop(name, None)
            state.fields.update(writes.set_fields)
            if writes.seq is not None:
                state.seq = writes.seq
            if writes.lease is not None:
                self._set_lease(node, state, writes.lease, writes.lease_ttl)
        store.bytes_written += sum(len(k) + len(v) for k, v in writes.set_fields.items())
        store.bytes_written += sum(len(k) for k in writes.del_fields)
        for message in writes.messages:
            store.broadcast(message)

    def _set_lease(self, node: str, state: _Node, lease: bytes, ttl: float) -> None:
        state.lease = lease
        state.expires_at = self.store._clock() + ttl
        self.store.members.add(node)
        self.store.bytes_written += len(lease)

    async def renew(self, node: str, lease: bytes, ttl: float) -> bool:
        """Renew the lease; False if it had lapsed."""
        self.store.check()
        lapsed = self.store.lease_ttl(node) is None
        state = self.store.nodes.setdefault(node, _Node())
        self._set_lease(node, state, lease, ttl)
        return not lapsed

    async def node_ids(self) -> set[str]:
        """The set of node ids."""
        self.store.check()
        return set(self.store.members)

    async def read_node(self, node: str) -> NodeState | None:
        """The node's lease and hash; None once the lease expired."""
        self.store.check()
        ttl = self.store.lease_ttl(node)
        state = self.store.nodes.get(node)
        if ttl is None or state is None or state.lease is None:
            return None
        return NodeState(ttl, state.lease, state.seq, dict(state.fields))

    async def append(self, request: HistoryAppend) -> Appended:
        """Like the Redis append script: offset, entry, TTLs and bus message at once."""
        store = self.store
        store.check()
        stream = store.stream(request.room) or store.new_stream(
            request.room, request.fresh_epoch, request.ttl
        )
        pid = request.publish_id
        if pid is not None and pid in stream.ids:
            return Appended(stream.ids[pid], stream.epoch, True)
        stream.top += 1
        offset = stream.top
        stream.entries.append(
            StreamEntry(offset, request.payload, request.sender, request.exclude, pid)
        )
        if pid is not None:
            stream.ids[pid] = offset
        while len(stream.entries) > request.size:
            dropped = stream.entries.popleft()
            if dropped.publish_id is not None:
                stream.ids.pop(dropped.publish_id, None)
        stream.expires_at = store._clock() + request.ttl
        message = wire.with_position(request.bus_prefix, request.bus_suffix, offset, stream.epoch)
        if store.drop_history_messages > 0:
            store.drop_history_messages -= 1
        else:
            store.broadcast(message)
        return Appended(offset, stream.epoch, False)

    async def read(
        self, room: str, after: int, count: int, fresh_epoch: str, ttl: float
    ) -> StreamRead:
        """The room's position and entries after ``after`` (a position is created if missing)."""
        store = self.store
        store.check()
        stream = store.stream(room)
        if stream is None:
            stream = store.new_stream(room, fresh_epoch, ttl)
        entries = [e for e in stream.entries if e.offset > after][: max(count, 0)]
        return StreamRead(stream.epoch, stream.top, entries)


class MemoryBroker(Broker):
    """A :class:`~lucent_ws.broker.Broker` over a shared :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, *, lease: float = 15.0, node_id: str | None = None):
        super().__init__(MemoryBackend(store), lease=lease, node_id=node_id)
        self.store = store
