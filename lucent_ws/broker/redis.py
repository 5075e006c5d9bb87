"""The Redis backend: the cluster's bus, membership hashes and leases in Redis.

Needs the ``redis`` extra (redis-py's asyncio client). Layout in Redis, under a
key prefix ``P`` (``--redis-prefix``, default ``lucent_ws``):

- ``P:bus`` — the one pub/sub channel every node publishes to and reads
  (:mod:`lucent_ws.broker.wire`);
- ``P:node:<id>`` — the node's lease: its figures as JSON, expiring after the
  lease (default 15 s) unless renewed;
- ``P:conns:<id>`` — a hash of the node's connections and memberships plus
  ``~seq``, the node's membership sequence number;
- ``P:nodes`` — the set of node ids, pruned of nodes whose lease is gone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT, FieldT

from ..errors import ConfigurationError
from .backend import NodeState, Writes
from .replication import Broker

__all__ = ["RedisBackend", "RedisBroker"]

_SEQ_FIELD: Final = "~seq"


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
        self._client = aioredis.Redis.from_url(
            self.url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.timeout,
            client_name=f"lucent_ws:{self.prefix}",
        )
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)

    async def close(self) -> None:
        """Unsubscribe and close the client."""
        pubsub, client = self._pubsub, self._client
        self._pubsub = self._client = None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.reset()
        if client is not None:
            with contextlib.suppress(Exception):
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
