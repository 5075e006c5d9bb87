"""The storage seam: what a backend (Redis, or the in-process one) must provide.

A backend offers four things, each a plain key/value or pub/sub primitive, and
knows nothing about rooms or connections:

- a **bus**: publish opaque messages that every node (the publisher included)
  receives in the order each publisher sent them;
- per node, a **membership hash** of opaque fields (written as deltas, read as a
  whole), plus its sequence number;
- per node, a **lease**: a small value that expires after a time-to-live unless
  renewed;
- a **set of node ids**.

:class:`~lucent_ws.broker.replication.Broker` builds cluster membership,
delivery and failure handling on top of it. Backend methods raise on failure
(any exception); the broker then reconnects with backoff.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = ["Backend", "NodeState", "Writes"]


@dataclass(slots=True)
class Writes:
    """One round trip to the backend, applied in this order.

    1. ``forget``: drop the node's lease, membership hash and set entry;
    2. ``replace``: empty the node's membership hash;
    3. delete ``del_fields``, then set ``set_fields`` and ``seq`` in the hash;
    4. ``lease``: set the node's lease to this value for ``lease_ttl`` seconds,
       and add the node to the set of nodes;
    5. publish ``messages`` on the bus, in order.

    With ``atomic`` no other client may observe a part of it.
    """

    node: str
    forget: bool = False
    replace: bool = False
    del_fields: list[str] = field(default_factory=list)
    set_fields: dict[str, bytes] = field(default_factory=dict)
    seq: int | None = None
    lease: bytes | None = None
    lease_ttl: float = 0.0
    messages: list[bytes] = field(default_factory=list)
    atomic: bool = False


class NodeState(NamedTuple):
    """A node as stored: what remains of its lease, its lease value, its hash."""

    ttl: float
    lease: bytes
    seq: int
    fields: dict[str, bytes]


class Backend(Protocol):
    """Key/value and pub/sub primitives for :class:`~lucent_ws.broker.Broker`."""

    @property
    def name(self) -> str:
        """Where it connects, for logs (never with credentials)."""

    async def connect(self) -> None:
        """Connect and subscribe to the bus; raise if unreachable."""

    async def close(self) -> None:
        """Disconnect (never raises)."""

    def messages(self) -> AsyncIterator[bytes]:
        """The bus messages as they arrive; raises when the connection is lost."""

    async def write(self, writes: Writes) -> None:
        """Apply one :class:`Writes`."""

    async def renew(self, node: str, lease: bytes, ttl: float) -> bool:
        """Renew a node's lease (and its set entry); False if the lease had lapsed."""

    async def node_ids(self) -> set[str]:
        """The ids in the set of nodes."""

    async def read_node(self, node: str) -> NodeState | None:
        """A node's lease and hash, read at one instant; None if its lease is gone."""
