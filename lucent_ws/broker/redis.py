"""The Redis backend: the cluster's bus, membership hashes and leases in Redis.

Needs the ``redis`` extra (redis-py's asyncio client). Layout in Redis, under a
key prefix ``P`` (``--redis-prefix``, default ``lucent_ws``):

- ``P:bus`` — the one pub/sub channel every node publishes to and reads
  (:mod:`lucent_ws.broker.wire`);
- ``P:node:<id>`` — the node's lease: its figures as JSON, expiring after the
  lease (default 15 s) unless renewed;
- ``P:conns:<id>`` — a hash of the node's connections and memberships plus
  ``~seq``, the node's membership sequence number;
- ``P:nodes`` — the set of node ids, pruned of nodes whose lease is gone;
- per history room: ``P:hpos:<room>``, a hash of the room's epoch ``e`` and top
  offset ``o``; ``P:hist:<room>``, a Stream of its entries under ids
  ``<offset>-1`` (fields ``p`` payload, ``f`` sender, ``x`` excluded ids as
  JSON, ``i`` publish id; trimmed with ``MAXLEN ~ history_size``);
  ``P:hids:<room>``, a hash of publish id -> offset for the newest
  ``history_size`` offsets. One Lua script (:data:`APPEND_SCRIPT`) assigns the
  offset, appends, refreshes the three keys' TTL (``history_ttl`` after the last
  append) and publishes on the bus, atomically. A missing position (new room,
  expired, or a Redis that lost its data) is created with a fresh random epoch
  and drops whatever stream or ids were left, so offsets are never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, FieldT

from .. import jsoncodec
from ..errors import ConfigurationError
from .backend import Appended, HistoryAppend, NodeState, StreamEntry, StreamRead, Writes
from .batching import Batcher
from .replication import Broker

__all__ = ["RedisBackend", "RedisBroker"]

_SEQ_FIELD: Final = "~seq"
MAX_CONNECTIONS: Final = 32
"""Connections to Redis per node at most (the bus subscription included)."""


# KEYS: position, stream, ids. ARGV: fresh epoch, publish id or "", size, ttl (ms),
# bus prefix, bus suffix, payload, sender or "", excluded ids as JSON or "", channel.
APPEND_SCRIPT: Final = """
local pos, hist, hids = KEYS[1], KEYS[2], KEYS[3]
local epoch = redis.call('HGET', pos, 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', hist, hids)
  redis.call('HSET', pos, 'e', epoch, 'o', 0)
end
local id = ARGV[2]
if id ~= '' then
  local seen = redis.call('HGET', hids, id)
  if seen then
    return {tonumber(seen), epoch, 1}
  end
end
local size = tonumber(ARGV[3])
local offset = redis.call('HINCRBY', pos, 'o', 1)
local fields = {'p', ARGV[7]}
if ARGV[8] ~= '' then
  table.insert(fields, 'f'); table.insert(fields, ARGV[8])
end
if ARGV[9] ~= '' then
  table.insert(fields, 'x'); table.insert(fields, ARGV[9])
end
if id ~= '' then
  table.insert(fields, 'i'); table.insert(fields, id)
  redis.call('HSET', hids, id, offset)
  if redis.call('HLEN', hids) > 2 * size + 16 then
    local all = redis.call('HGETALL', hids)
    for i = 1, #all, 2 do
      if tonumber(all[i + 1]) <= offset - size then
        redis.call('HDEL', hids, all[i])
      end
    end
  end
end
redis.call('XADD', hist, 'MAXLEN', '~', size, offset .. '-1', unpack(fields))
redis.call('PEXPIRE', pos, ARGV[4])
redis.call('PEXPIRE', hist, ARGV[4])
redis.call('PEXPIRE', hids, ARGV[4])
redis.call('PUBLISH', ARGV[10], ARGV[5] .. ',"o":' .. offset .. ',"e":"' .. epoch .. '"' .. ARGV[6])
return {offset, epoch, 0}
"""

# KEYS: position, stream, ids. ARGV: after, count, fresh epoch, ttl (ms).
READ_SCRIPT: Final = """
local pos, hist = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', pos, 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', hist, KEYS[3])
  redis.call('HSET', pos, 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', pos, ARGV[4])
  return {epoch, 0, {}}
end
local top = tonumber(redis.call('HGET', pos, 'o'))
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', hist, (tonumber(ARGV[1]) + 1) .. '-0', '+', 'COUNT', ARGV[2])
end
return {epoch, top, entries}
"""


def _safe_url(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBackend:
    """A :class:`~lucent_ws.broker.backend.Backend` over one Redis server.

    ``prefix`` namespaces every key and the channel, so several apps can share
    one Redis; ``connect_timeout`` bounds connecting, ``timeout`` each command.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "lucent_ws",
        connect_timeout: float = 2.0,
        timeout: float = 5.0,
    ) -> None:
        if not prefix:
            raise ConfigurationError("redis prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._channel = f"{prefix}:bus"
        self._nodes_key = f"{prefix}:nodes"
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._append: Any = None
        self._appends: Batcher[HistoryAppend, Appended] = Batcher(self._append_batch)
        self._read: Any = None

    @property
    def name(self) -> str:
        """The server's URL without credentials."""
        return _safe_url(self.url)

    def _lease_key(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    def _conns_key(self, node: str) -> str:
        return f"{self.prefix}:conns:{node}"

    @property
    def client(self) -> aioredis.Redis:
        """The connected client; RuntimeError before :meth:`connect`."""
        if self._client is None:
            raise RuntimeError("Redis backend not connected")
        return self._client

    async def connect(self) -> None:
        """Open a client and subscribe to the bus."""
        await self.close()
        # A blocking pool: a burst of commands (300 joins reading history at once)
        # waits for a connection instead of failing past the pool's size.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.timeout,
            client_name=f"lucent_ws:{self.prefix}",
        )
        self._client = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
        # EVALSHA, loading the script again if the server lost it (a restart).
        self._append = self._client.register_script(APPEND_SCRIPT)
        self._read = self._client.register_script(READ_SCRIPT)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)

    async def close(self) -> None:
        """Unsubscribe and close the client (never raises; each step bounded by ``timeout``)."""
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await pubsub.reset()
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await client.aclose()

    async def messages(self) -> AsyncIterator[bytes]:
        """The bus messages as they arrive."""
        pubsub = self._pubsub
        if pubsub is None:
            raise RuntimeError("Redis backend not connected")
        async for message in pubsub.listen():
            if message.get("type") == "message":
                yield message["data"]

    async def write(self, writes: Writes) -> None:
        """Apply ``writes`` in one pipeline (a MULTI/EXEC transaction when atomic)."""
        node = writes.node
        conns_key = self._conns_key(node)
        pipe = self.client.pipeline(transaction=writes.atomic)
        if writes.forget:
            pipe.delete(self._lease_key(node), conns_key)
            pipe.srem(self._nodes_key, node)
        if writes.replace:
            pipe.delete(conns_key)
        if writes.del_fields:
            pipe.hdel(conns_key, *writes.del_fields)
        mapping: dict[FieldT, EncodableT] = dict(writes.set_fields.items())
        if writes.seq is not None:
            mapping[_SEQ_FIELD] = writes.seq
        if mapping:
            pipe.hset(conns_key, mapping=mapping)
        if writes.lease is not None:
            pipe.set(self._lease_key(node), writes.lease, px=_ms(writes.lease_ttl))
            pipe.sadd(self._nodes_key, node)
        for message in writes.messages:
            pipe.publish(self._channel, message)
        await pipe.execute()

    async def renew(self, node: str, lease: bytes, ttl: float) -> bool:
        """Renew the lease; False if it had lapsed (then it is set again)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self._lease_key(node), lease, px=_ms(ttl), get=True)
        pipe.sadd(self._nodes_key, node)
        previous, _ = await pipe.execute()
        return previous is not None

    def history_keys(self, room: str) -> list[str]:
        """A history room's keys: its position, its stream and its publish ids."""
        p = self.prefix
        return [f"{p}:hpos:{room}", f"{p}:hist:{room}", f"{p}:hids:{room}"]

    async def append(self, request: HistoryAppend) -> Appended:
        """Run the append script (see the module docs).

        Appends made while one is in flight go together in the next pipeline, in order.
        """
        if self._append is None:
            raise RuntimeError("Redis backend not connected")
        return await self._appends.submit(request)

    async def _append_batch(self, batch: Sequence[HistoryAppend]) -> list[Appended | Exception]:
        script = self._append
        if len(batch) == 1 or script is None:
            return [await self._append_one(batch[0])]
        pipe = self.client.pipeline(transaction=False)
        for request in batch:
            keys = self.history_keys(request.room)
            pipe.evalsha(script.sha, len(keys), *keys, *self._args(request))
        results = await pipe.execute(raise_on_error=False)
        answers: list[Appended | Exception] = []
        for request, result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                # The server lost the script (a restart). Only these were not run: the
                # others (after another client loaded it meanwhile) must not run twice,
                # even if these then take offsets after theirs.
                try:
                    answers.append(await self._append_one(request))
                except Exception as exc:
                    answers.append(exc)
            else:
                answers.append(result if isinstance(result, Exception) else _appended(result))
        return answers

    async def _append_one(self, request: HistoryAppend) -> Appended:
        if self._append is None:
            raise RuntimeError("Redis backend not connected")
        keys = self.history_keys(request.room)
        return _appended(await self._append(keys=keys, args=self._args(request)))

    def _args(self, request: HistoryAppend) -> list[EncodableT]:
        return [
            request.fresh_epoch,
            request.publish_id or "",
            max(1, request.size),
            _ms(request.ttl),
            request.bus_prefix,
            request.bus_suffix,
            request.payload,
            request.sender or "",
            jsoncodec.dumps(list(request.exclude)) if request.exclude else "",
            self._channel,
        ]

    async def read(
        self, room: str, after: int, count: int, fresh_epoch: str, ttl: float
    ) -> StreamRead:
        """Run the read script: position and entries at one instant."""
        if self._read is None:
            raise RuntimeError("Redis backend not connected")
        epoch, top, raw = await self._read(
            keys=self.history_keys(room), args=[after, max(count, 0), fresh_epoch, _ms(ttl)]
        )
        return StreamRead(_text(epoch), int(top), [_entry(i, f) for i, f in raw])

    async def node_ids(self) -> set[str]:
        """The members of ``P:nodes``."""
        return {_text(member) for member in await self.client.smembers(self._nodes_key)}

    async def read_node(self, node: str) -> NodeState | None:
        """Lease TTL, lease value and membership hash in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        pipe.pttl(self._lease_key(node))
        pipe.get(self._lease_key(node))
        pipe.hgetall(self._conns_key(node))
        ttl_ms, lease, raw = await pipe.execute()
        if ttl_ms is None or ttl_ms < 0 or lease is None:
            return None
        fields = {_text(name): value for name, value in raw.items()}
        seq_value = fields.pop(_SEQ_FIELD, b"0")
        try:
            seq = int(seq_value)
        except ValueError:
            seq = 0
        return NodeState(ttl_ms / 1000, lease, seq, fields)


def _entry(stream_id: bytes | str, flat: list[bytes]) -> StreamEntry:
    fields = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}
    sender, excluded, pid = fields.get("f"), fields.get("x"), fields.get("i")
    exclude = tuple(jsoncodec.loads(excluded)) if excluded else ()
    return StreamEntry(
        int(_text(stream_id).partition("-")[0]),
        fields.get("p", b"null"),
        None if sender is None else _text(sender),
        exclude,
        None if pid is None else _text(pid),
    )


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisBroker(Broker):
    """A :class:`~lucent_ws.broker.Broker` over Redis: ``Broker(RedisBackend(url, ...))``.

    ``prefix`` namespaces the keys and the channel; ``lease`` bounds how long a
    dead node stays in the cluster; ``connect_timeout`` bounds connecting and
    each command (the lease's third, when longer).
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
        backend = RedisBackend(
            url,
            prefix=prefix,
            connect_timeout=connect_timeout,
            timeout=max(lease / 3, connect_timeout),
        )
        super().__init__(
            backend,
            lease=lease,
            node_id=node_id,
            max_queue=max_queue,
            reconnect_max=reconnect_max,
            clock=clock,
        )
        self.redis = backend


def _appended(result: Any) -> Appended:
    offset, epoch, duplicate = result
    return Appended(int(offset), _text(epoch), bool(duplicate))
