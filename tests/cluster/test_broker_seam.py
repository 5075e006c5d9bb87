"""The manager's cluster seam, driven by a recording cluster: no backend, no server."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from lucent_ws import WebSocketManager, create_app, jsoncodec
from lucent_ws.cluster import Cluster, LocalNode, SingleNode
from lucent_ws.connection import Connection
from lucent_ws.envelope import RoomMessage
from lucent_ws.replica import ClusterView, Record
from lucent_ws.stats import ClusterStats

from ..fakes import FakeTransport, fake_connect


class RecordingBroker:
    """A cluster whose other nodes are whatever the test puts in its view."""

    def __init__(self, *, up: bool = True) -> None:
        self.up = up
        self._view = ClusterView()
        self.calls: list[tuple[Any, ...]] = []
        self.changed: list[tuple[str, str, Any]] = []

    @property
    def node_id(self) -> str:
        return "node-a"

    @property
    def view(self) -> ClusterView:
        return self._view

    @property
    def history(self) -> None:
        return None

    def connected(self, conn: Connection) -> None:
        self.changed.append(("connected", conn.id, dict(conn.meta)))

    def removed(self, conn_id: str, rooms: Collection[str]) -> None:
        self.changed.append(("removed", conn_id, sorted(rooms)))

    def joined(self, conn_id: str, room: str) -> None:
        self.changed.append(("joined", conn_id, room))

    def left(self, conn_id: str, room: str) -> None:
        self.changed.append(("left", conn_id, room))

    def meta_changed(self, conn: Connection) -> None:
        self.changed.append(("meta", conn.id, dict(conn.meta)))

    def publish_room(self, message: RoomMessage, exclude: frozenset[str]) -> int:
        self.calls.append(("room", message.room, message.v1(), exclude))
        return self._view.room_size(message.room, exclude) if self.up else 0

    def publish_all(self, data: bytes, exclude: frozenset[str]) -> int:
        self.calls.append(("all", data, exclude))
        return self._view.connection_count(exclude) if self.up else 0

    def publish_direct(self, conn_id: str, data: bytes) -> bool:
        self.calls.append(("direct", conn_id, data))
        return self.up

    def publish_disconnect(self, conn_id: str, code: int, message: str) -> bool:
        self.calls.append(("kick", conn_id, code, message))
        return self.up

    def cluster_stats(self) -> ClusterStats:
        return {"node": "node-a", "broker": "up", "undelivered": 0, "nodes": {}}

    async def start(self, node: LocalNode) -> None:
        self.calls.append(("start",))
        node.attach_cluster(self)
        self.node = node

    async def stop(self) -> None:
        self.calls.append(("stop",))
        self.node.attach_cluster(None)


def test_the_recording_broker_and_the_single_node_are_clusters() -> None:
    clusters: list[Cluster] = [RecordingBroker(), SingleNode()]
    assert [cluster.node_id for cluster in clusters] == ["node-a", "local"]


def remote_node(broker: RecordingBroker) -> None:
    broker.view.apply_snapshot(
        "node-b",
        1,
        {"r1": Record(("posts",), {"userId": 7}), "r2": Record(("posts", "news")), "r3": Record()},
        ttl=60,
    )


def messages(transport: FakeTransport) -> list[Any]:
    return transport.messages()[1:]


def test_without_a_broker_stats_and_results_are_single_node(manager: WebSocketManager) -> None:
    conn, transport = fake_connect(manager)
    manager.join_room(conn.id, "posts")
    assert isinstance(manager.cluster, SingleNode)
    assert manager.broadcast_to_room("posts", {"n": 1}) == 1
    assert manager.broadcast_all({"n": 2}) == 1
    assert manager.send_to("nobody", {"n": 3}) is False
    assert manager.disconnect("nobody") is False
    stats = manager.get_stats()
    assert stats["connections"] == 1
    assert stats["rooms"] == {"posts": 1}
    assert not {"node", "nodes", "broker", "undelivered"} & set(stats)
    assert messages(transport) == [{"n": 1}, {"n": 2}]


def test_room_broadcast_delivers_locally_then_publishes_the_same_bytes(
    manager: WebSocketManager,
) -> None:
    broker = RecordingBroker()
    remote_node(broker)
    manager.attach_cluster(broker)
    a, ta = fake_connect(manager)
    b, tb = fake_connect(manager)
    manager.join_room(a.id, "posts")
    manager.join_room(b.id, "posts")
    delivered = manager.broadcast_to_room("posts", {"type": "post:created"}, exclude=[b.id, "r1"])
    assert delivered == 1 + 1  # a here, r2 on node-b
    assert messages(ta) == [{"type": "post:created"}]
    assert messages(tb) == []
    assert broker.calls == [
        ("room", "posts", jsoncodec.dumps({"type": "post:created"}), frozenset({b.id, "r1"}))
    ]


def test_broadcast_all_counts_remote_connections_minus_excluded(
    manager: WebSocketManager,
) -> None:
    broker = RecordingBroker()
    remote_node(broker)
    manager.attach_cluster(broker)
    _, ta = fake_connect(manager)
    assert manager.broadcast_all({"n": 1}, exclude=["r3"]) == 1 + 2
    assert messages(ta) == [{"n": 1}]
    assert broker.calls == [("all", b'{"n":1}', frozenset({"r3"}))]


def test_unavailable_broker_counts_only_local_recipients(manager: WebSocketManager) -> None:
    broker = RecordingBroker(up=False)
    remote_node(broker)
    manager.attach_cluster(broker)
    a, _ = fake_connect(manager)
    manager.join_room(a.id, "posts")
    assert manager.broadcast_to_room("posts", 1) == 1
    assert manager.broadcast_all(1) == 1
    assert manager.send_to("r1", 1) is False
    assert manager.disconnect("r1") is False


def test_deliveries_from_other_nodes_are_not_published_again(manager: WebSocketManager) -> None:
    broker = RecordingBroker()
    manager.attach_cluster(broker)
    a, ta = fake_connect(manager)
    b, tb = fake_connect(manager)
    manager.join_room(a.id, "posts")
    assert manager.deliver_to_room(RoomMessage("posts", b'{"n":1}'), exclude=[b.id]) == 1
    assert manager.deliver_to_room(RoomMessage("empty", b'{"n":1}')) == 0
    assert manager.deliver_to_all(b'{"n":2}', exclude=[a.id]) == 1
    assert messages(ta) == [{"n": 1}]
    assert messages(tb) == [{"n": 2}]
    assert broker.calls == []


def test_direct_sends_and_kicks_reach_known_remote_ids_only(manager: WebSocketManager) -> None:
    broker = RecordingBroker()
    remote_node(broker)
    manager.attach_cluster(broker)
    assert manager.send_to("r2", {"hi": 1}) is True
    assert manager.send_to("nobody", {"hi": 1}) is False
    assert manager.disconnect("r3", 4001, "bye") is True
    assert manager.disconnect("nobody") is False
    assert broker.calls == [("direct", "r2", b'{"hi":1}'), ("kick", "r3", 4001, "bye")]
    local, transport = fake_connect(manager)
    assert manager.disconnect(local.id) is True
    assert transport.aborted  # closed here (no loop running: aborted), not published
    assert len(broker.calls) == 2


def test_membership_changes_are_reported_to_the_broker(manager: WebSocketManager) -> None:
    broker = RecordingBroker()
    manager.attach_cluster(broker)
    conn, _ = fake_connect(manager)
    manager.join_room(conn.id, "posts")
    manager.join_room(conn.id, "posts")  # no change, no report
    manager.set_meta(conn.id, "userId", 7)
    manager.leave_room(conn.id, "posts")
    manager.leave_room(conn.id, "posts")
    manager.join_room(conn.id, "news")
    manager.remove(conn.id)
    assert broker.changed == [
        ("connected", conn.id, {}),
        ("joined", conn.id, "posts"),
        ("meta", conn.id, {"userId": 7}),
        ("left", conn.id, "posts"),
        ("joined", conn.id, "news"),
        ("removed", conn.id, ["news"]),
    ]


def test_reads_merge_the_cluster_view(manager: WebSocketManager) -> None:
    broker = RecordingBroker()
    remote_node(broker)
    manager.attach_cluster(broker)
    a, _ = fake_connect(manager)
    manager.join_room(a.id, "posts")
    manager.join_room(a.id, "local-only")
    assert sorted(manager.get_room_members("posts")) == sorted([a.id, "r1", "r2"])
    assert sorted(manager.list_rooms()) == ["local-only", "news", "posts"]
    assert manager.room_size("posts") == 3
    assert manager.get_connection_rooms("r2") == ["news", "posts"]
    assert manager.get_meta("r1", "userId") == 7
    assert manager.get_meta("r2", "userId", "none") == "none"
    remote = manager.get_remote_connection("r1")
    assert remote is not None
    assert remote.node == "node-b"
    assert manager.get_connection("r1") is None  # local connections only
    assert manager.set_meta("r1", "x", 1) is False  # replicas are read-only
    stats = manager.get_stats()
    assert stats["connections"] == 4
    assert stats["rooms"] == {"posts": 3, "local-only": 1, "news": 1}
    assert stats["node"] == "node-a"
    assert manager.local_stats()["connections"] == 1


async def test_the_app_starts_and_stops_its_broker(manager: WebSocketManager) -> None:
    broker = RecordingBroker()
    app = create_app(manager=manager, heartbeat=False, admin=False, broker=broker)
    async with TestClient(TestServer(app)) as client:
        assert manager.cluster is broker
        async with client.ws_connect("/ws") as ws:
            hello = await ws.receive_json()
            assert broker.changed == [("connected", hello["id"], {})]
    assert broker.calls == [("start",), ("stop",)]
    assert isinstance(manager.cluster, SingleNode)
