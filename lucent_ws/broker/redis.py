"""The Redis broker: nodes share rooms, direct sends and kicks over Redis pub/sub.

Needs the ``redis`` extra (redis-py's asyncio client). Layout in Redis, under a
key prefix ``P`` (``--redis-prefix``, default ``lucent_ws``):

- ``P:bus`` — the one pub/sub channel every node publishes to and reads
  (:mod:`lucent_ws.broker.wire`); a node ignores its own messages.
- ``P:node:<id>`` — the node's lease: its figures as JSON, expiring after the
  lease (default 15 s) unless refreshed, which happens every third of it.
- ``P:conns:<id>`` — a hash of the node's connections (id -> rooms and meta)
  plus ``~seq``, the node's membership sequence number.
- ``P:nodes`` — the set of node ids, pruned of nodes whose lease is gone.

Each node keeps a :class:`~lucent_ws.broker.view.ClusterView` of the others:
filled from their hashes (on start, on their ``hello``, when a sequence number
is skipped, and every third of the lease), kept current by their ``conn``
messages, and pruned by their leases, so a node killed without warning
vanishes from members and stats within its lease.

Publishing never awaits in the caller: messages go into a queue that one task
writes to Redis in order, one pipeline per batch, so each node's messages
reach every other node in the order they were sent. While Redis is
unreachable, nodes serve their own clients; what they publish meanwhile is not
handed to Redis, is counted as ``undelivered``, and is left out of the counts
the send methods return. The broker reconnects with capped exponential backoff,
re-registers and resynchronises.
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
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from .. import jsoncodec
from ..errors import ConfigurationError
from ..manager import EvictionReason
from . import wire
from .view import ClusterView, Record

if TYPE_CHECKING:
    from ..manager import WebSocketManager
    from . import ClusterStats, NodeStats

__all__ = ["RedisBroker"]

logger = logging.getLogger("lucent_ws.broker.redis")

_SEQ_FIELD: Final = "~seq"
_FAILURES: Final = (RedisError, OSError, ValueError)


def _new_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _safe_url(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisBroker:
    """A :class:`~lucent_ws.broker.Broker` over Redis pub/sub, with leases.

    ``lease`` (seconds) bounds how long a node that died without a word stays
    in the others' membership and stats. ``prefix`` namespaces every key and the
    channel, so several apps can share one Redis. ``max_queue`` caps messages
    waiting for Redis; beyond it they are counted as undelivered.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "lucent_ws",
        lease: float = 15.0,
        node_id: str | None = None,
        max_queue: int = 100_000,
        reconnect_max: float = 5.0,
        connect_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease <= 0:
            raise ConfigurationError(f"lease must be positive, not {lease}")
        if not prefix:
            raise ConfigurationError("redis prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self.lease = lease
        self.max_queue = max_queue
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self._node_id = node_id or _new_node_id()
        self._clock = clock
        self._view = ClusterView(clock=clock)
        self._manager: WebSocketManager | None = None
        self._up = False
        self._up_event = asyncio.Event()
        self._queue: deque[bytes | str] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._resync = asyncio.Event()
        self._resync_nodes: set[str] = set()
        self._seq = 0
        self._undelivered = 0
        self._outage_since: float | None = None
        self._outage_undelivered = 0
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._channel = f"{prefix}:bus"
        self._nodes_key = f"{prefix}:nodes"

    # --- Broker protocol -------------------------------------------------------------

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
        """True while Redis is reachable and this node is registered."""
        return self._up

    @property
    def undelivered(self) -> int:
        """Messages that could not be handed to Redis (outage or full queue)."""
        return self._undelivered

    def connection_changed(self, conn_id: str) -> None:
        """Queue a write of the connection's record (coalesced per batch)."""
        if self._up:
            self._enqueue(conn_id)

    def publish_room(self, room: str, data: bytes, exclude: frozenset[str]) -> int:
        """Queue a room broadcast; returns the room's members elsewhere, 0 if down."""
        if not self._enqueue(wire.encode(self._node_id, wire.ROOM, data, r=room, x=list(exclude))):
            return 0
        return self._view.room_size(room, exclude)

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
        if self._manager is not None:
            nodes[self._node_id] = self._own_figures(self._manager)
        for node in self._view.nodes():
            figures = node.stats
            nodes[node.node_id] = {
                "connections": len(node.records),
                "rooms": len(node.rooms),
                "messagesIn": int(figures.get("messagesIn", 0)),
                "messagesOut": int(figures.get("messagesOut", 0)),
                "bytesOut": int(figures.get("bytesOut", 0)),
                "undelivered": int(figures.get("undelivered", 0)),
                "uptime": float(figures.get("uptime", 0.0)),
                "self": False,
            }
        return {
            "node": self._node_id,
            "broker": "up" if self._up else "down",
            "undelivered": self._undelivered,
            "nodes": nodes,
        }

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, manager: WebSocketManager) -> None:
        """Attach to ``manager`` and connect; returns after the first attempt.

        If Redis is unreachable the node still starts, serves its own clients
        and keeps retrying in the background.
        """
        if self._task is not None:
            raise RuntimeError("broker already started")
        self._manager = manager
        manager.attach_broker(self)
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"lucent_ws redis broker {self._node_id}"
        )
        await self._attempted.wait()

    async def stop(self) -> None:
        """Flush what is queued, deregister, disconnect and detach from the manager."""
        timeout = self.connect_timeout
        task, self._task = self._task, None
        if task is None:
            return
        client = self._client
        if self._up and client is not None:
            with contextlib.suppress(TimeoutError, *_FAILURES):
                async with asyncio.timeout(timeout):
                    while self._queue:
                        self._idle.clear()
                        self._wake.set()
                        await self._idle.wait()
                    await self._deregister(client)
        self._up = False
        self._up_event.clear()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._manager is not None and self._manager.broker is self:
            self._manager.attach_broker(None)
        self._manager = None

    async def wait_until_up(self, timeout: float = 10.0) -> None:
        """Wait until Redis is reachable and this node is registered (tests, tools)."""
        async with asyncio.timeout(timeout):
            await self._up_event.wait()

    # --- queueing --------------------------------------------------------------------

    def _enqueue(self, item: bytes | str) -> bool:
        if not self._up or len(self._queue) >= self.max_queue:
            if isinstance(item, bytes):
                self._undelivered += 1
            return False
        self._queue.append(item)
        self._wake.set()
        return True

    def _drop_queue(self) -> None:
        lost = sum(1 for item in self._queue if isinstance(item, bytes))
        self._undelivered += lost
        self._queue.clear()

    # --- keys ------------------------------------------------------------------------

    def _lease_key(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    def _conns_key(self, node_id: str) -> str:
        return f"{self.prefix}:conns:{node_id}"

    # --- the connection's life -------------------------------------------------------

    async def _supervise(self) -> None:
        delay = 0.1
        while True:
            started = self._clock()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._went_down(exc)
            finally:
                self._attempted.set()
            if self._clock() - started > self.lease:
                delay = 0.1
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.reconnect_max)

    async def _session(self) -> None:
        client = aioredis.Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=max(self.lease / 3, self.connect_timeout),
            client_name=f"lucent_ws:{self._node_id}",
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            # What this node knew of the others predates the outage: a node it still
            # lists may not have resubscribed yet, and counting it would claim deliveries
            # that never happen. Rebuild the view from Redis before publishing again.
            self._view.clear()
            await self._register(client)
            self._client = client
            self._up_event.set()
            self._came_up()
            self._attempted.set()
            await self._resync_all(client)
            await _first_failure(
                self._publisher(client),
                self._subscriber(pubsub),
                self._ticker(client),
            )
        finally:
            self._client = None
            self._up_event.clear()
            if self._up:
                self._up = False
                self._drop_queue()
            with contextlib.suppress(Exception):
                await pubsub.reset()
            with contextlib.suppress(Exception):
                await client.aclose()

    def _went_down(self, exc: BaseException) -> None:
        self._up = False
        self._drop_queue()
        if self._outage_since is None:
            self._outage_since = self._clock()
            self._outage_undelivered = self._undelivered
            logger.error(
                "Redis unreachable at %s (%s: %s); serving local clients only, retrying",
                _safe_url(self.url),
                type(exc).__name__,
                exc,
            )
        else:
            logger.debug("Redis still unreachable: %s: %s", type(exc).__name__, exc)

    def _came_up(self) -> None:
        if self._outage_since is not None:
            logger.warning(
                "Redis reachable again after %.1f s; %d messages published meanwhile "
                "were not delivered to other nodes",
                self._clock() - self._outage_since,
                self._undelivered - self._outage_undelivered,
            )
            self._outage_since = None
        else:
            logger.info("node %s joined the cluster at %s", self._node_id, _safe_url(self.url))

    async def _register(self, client: aioredis.Redis) -> None:
        """Write this node's whole membership, take the lease, announce it."""
        manager = self._manager
        assert manager is not None
        # From here on changes are queued; they are written after this snapshot.
        self._up = True
        self._seq += 1
        seq = self._seq
        mapping: dict[FieldT, EncodableT] = {_SEQ_FIELD: seq}
        for conn_id in manager.connection_ids():
            conn = manager.get_connection(conn_id)
            if conn is not None:
                mapping[conn_id] = wire.encode_record(conn.rooms, conn.meta)
        conns_key = self._conns_key(self._node_id)
        pipe = client.pipeline(transaction=True)
        pipe.delete(conns_key)
        pipe.hset(conns_key, mapping=mapping)
        pipe.set(self._lease_key(self._node_id), self._lease_value(manager), px=self._lease_ms)
        pipe.sadd(self._nodes_key, self._node_id)
        pipe.publish(self._channel, wire.encode(self._node_id, wire.HELLO, s=seq))
        try:
            await pipe.execute()
        except BaseException:
            self._up = False
            raise

    async def _deregister(self, client: aioredis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.delete(self._lease_key(self._node_id), self._conns_key(self._node_id))
        pipe.srem(self._nodes_key, self._node_id)
        pipe.publish(self._channel, wire.encode(self._node_id, wire.BYE))
        await pipe.execute()

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    def _own_figures(self, manager: WebSocketManager) -> NodeStats:
        stats = manager.local_stats()
        return {
            "connections": stats["connections"],
            "rooms": len(stats["rooms"]),
            "messagesIn": stats["messagesIn"],
            "messagesOut": stats["messagesOut"],
            "bytesOut": stats["bytesOut"],
            "undelivered": self._undelivered,
            "uptime": stats["uptime"],
            "self": True,
        }

    def _lease_value(self, manager: WebSocketManager) -> bytes:
        figures = dict(self._own_figures(manager))
        figures.pop("self")
        return jsoncodec.dumps(figures)

    # --- tasks -----------------------------------------------------------------------

    async def _publisher(self, client: aioredis.Redis) -> None:
        conns_key = self._conns_key(self._node_id)
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            batch = list(self._queue)
            self._queue.clear()
            pipe = client.pipeline(transaction=False)
            changed = [item for item in batch if isinstance(item, str)]
            if changed:
                self._write_changes(pipe, conns_key, dict.fromkeys(changed))
            messages = 0
            for item in batch:
                if isinstance(item, bytes):
                    pipe.publish(self._channel, item)
                    messages += 1
            try:
                await pipe.execute()
            except BaseException:
                self._undelivered += messages
                raise

    def _write_changes(self, pipe: Any, conns_key: str, conn_ids: dict[str, None]) -> None:
        manager = self._manager
        assert manager is not None
        changes: dict[str, bytes | None] = {}
        for conn_id in conn_ids:
            conn = manager.get_connection(conn_id)
            changes[conn_id] = None if conn is None else wire.encode_record(conn.rooms, conn.meta)
        self._seq += 1
        removed = [conn_id for conn_id, record in changes.items() if record is None]
        if removed:
            pipe.hdel(conns_key, *removed)
        mapping: dict[FieldT, EncodableT] = {
            conn_id: record for conn_id, record in changes.items() if record is not None
        }
        mapping[_SEQ_FIELD] = self._seq
        pipe.hset(conns_key, mapping=mapping)
        body = wire.encode_changes(changes)
        pipe.publish(self._channel, wire.encode(self._node_id, wire.CONN, body, s=self._seq))

    async def _subscriber(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                try:
                    self._on_message(message["data"])
                except (ValueError, TypeError, KeyError) as exc:
                    logger.warning("ignoring a malformed bus message: %s", exc)

    def _on_message(self, data: bytes) -> None:
        header, body = wire.decode(data)
        node = header["n"]
        if node == self._node_id:
            return
        manager = self._manager
        if manager is None:
            return
        kind = header.get("t")
        if kind == wire.ROOM:
            manager.deliver_to_room(str(header["r"]), body, frozenset(header.get("x") or ()))
        elif kind == wire.ALL:
            manager.deliver_to_all(body, frozenset(header.get("x") or ()))
        elif kind == wire.TO:
            conn = manager.get_connection(str(header["id"]))
            if conn is not None:
                manager.send_encoded(conn, body)
        elif kind == wire.KICK:
            conn_id = str(header["id"])
            if manager.get_connection(conn_id) is not None:
                manager.evict(
                    conn_id, int(header["c"]), EvictionReason.KICK, str(header["m"]), discard=False
                )
        elif kind == wire.CONN:
            if self._view.apply_changes(
                node, int(header["s"]), wire.decode_records(body), self.lease
            ):
                self._request_resync(node)
        elif kind == wire.HELLO:
            self._request_resync(node)
        elif kind == wire.BYE:
            self._view.drop(node)

    def _request_resync(self, node: str) -> None:
        self._resync_nodes.add(node)
        self._resync.set()

    async def _ticker(self, client: aioredis.Redis) -> None:
        period = self.lease / 3
        next_tick = self._clock() + period
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_tick - self._clock())):
                    await self._resync.wait()
            if self._clock() >= next_tick:
                next_tick = self._clock() + period
                await self._refresh_lease(client)
                await self._resync_all(client)
            else:
                self._resync.clear()
                nodes, self._resync_nodes = self._resync_nodes, set()
                for node in nodes:
                    await self._resync_node(client, node)

    async def _refresh_lease(self, client: aioredis.Redis) -> None:
        manager = self._manager
        assert manager is not None
        pipe = client.pipeline(transaction=False)
        pipe.set(
            self._lease_key(self._node_id), self._lease_value(manager), px=self._lease_ms, get=True
        )
        pipe.sadd(self._nodes_key, self._node_id)
        previous, _ = await pipe.execute()
        if previous is None:
            # The lease lapsed (Redis lost it, or this node stalled past it), and
            # others may have pruned this node: write everything again.
            logger.warning("node %s lost its lease; registering again", self._node_id)
            await self._register(client)
            # Writes queued before the snapshot may land after it: write them all again.
            for conn_id in manager.connection_ids():
                self._enqueue(conn_id)

    async def _resync_all(self, client: aioredis.Redis) -> None:
        self._resync.clear()
        self._resync_nodes.clear()
        members = {
            m.decode() if isinstance(m, bytes) else str(m)
            for m in await client.smembers(self._nodes_key)
        }
        members.discard(self._node_id)
        for node_id in self._view.node_ids():
            if node_id not in members:
                self._view.drop(node_id)
        for node_id in members:
            await self._resync_node(client, node_id)

    async def _resync_node(self, client: aioredis.Redis, node_id: str) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.pttl(self._lease_key(node_id))
        pipe.get(self._lease_key(node_id))
        pipe.hgetall(self._conns_key(node_id))
        ttl_ms, figures, fields = await pipe.execute()
        if ttl_ms is None or ttl_ms < 0 or figures is None:
            self._view.drop(node_id)
            cleanup = client.pipeline(transaction=False)
            cleanup.srem(self._nodes_key, node_id)
            cleanup.delete(self._conns_key(node_id))
            await cleanup.execute()
            return
        seq = 0
        records: dict[str, Record] = {}
        malformed = 0
        for key, value in fields.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            try:
                if name == _SEQ_FIELD:
                    seq = int(value)
                else:
                    records[name] = wire.decode_record(value)
            except ValueError:
                malformed += 1  # one bad record must not stall the whole resync
        if malformed:
            logger.warning("node %s: %d malformed membership fields skipped", node_id, malformed)
        try:
            stats = jsoncodec.loads(figures)
        except ValueError:
            stats = {}
        self._view.apply_snapshot(
            node_id, seq, records, ttl_ms / 1000, stats if isinstance(stats, dict) else {}
        )


async def _first_failure(*coroutines: Coroutine[Any, Any, None]) -> None:
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
    raise ConnectionError("Redis subscription ended")
