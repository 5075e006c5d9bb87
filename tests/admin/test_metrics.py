"""Prometheus metrics read from the hub at scrape time."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lucent_ws import WebSocketManager
from lucent_ws.admin.metrics import make_registry, render
from tests.conftest import Peer
from tests.waiting import wait_until

from .conftest import Hub


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_follow_the_hub(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("lobby"), await hub.peer("lobby", "news")]
    await hub.call("POST", "broadcast", json={"room": "lobby", "payload": "hi"})
    for peer in peers:
        assert await peer.recv() == "hi"
    await hub.call("DELETE", f"connections/{peers[1].id}")
    await wait_until(lambda: len(hub.manager) == 1)
    refused = await hub.client.get(f"{hub.base}ws", headers={"Origin": "http://evil.example"})
    assert refused.status == 403
    async with hub.client.get(
        hub.admin + "metrics", headers={"Authorization": "Bearer test-admin-token-0123456789"}
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    got = samples(text)
    counters = hub.manager.counters
    assert got[("lucent_ws_connections", ())] == 1
    assert got[("lucent_ws_rooms", ())] == 1
    assert got[("lucent_ws_room_members", (("room", "lobby"),))] == 1
    assert got[("lucent_ws_messages_in_total", ())] == counters.messages_in >= 3
    assert got[("lucent_ws_messages_out_total", ())] == counters.messages_out
    assert got[("lucent_ws_bytes_out_total", ())] == counters.bytes_out > 0
    assert got[("lucent_ws_evictions_total", (("reason", "kick"),))] == 1
    for reason in ("heartbeat", "slow_consumer", "rate_limit", "abuse"):
        assert got[("lucent_ws_evictions_total", (("reason", reason),))] == 0
    assert got[("lucent_ws_handshake_refusals_total", (("reason", "origin"),))] == 1


async def test_metrics_need_the_token(hub: Hub) -> None:
    assert (await hub.call("GET", "metrics", headers={}))[0] == 401


def test_room_labels_are_bounded_to_the_largest_rooms() -> None:
    manager = WebSocketManager(heartbeat=None)
    stats = {f"room{i}": i for i in range(1, 51)}
    manager.local_stats = lambda: {**WebSocketManager.local_stats(manager), "rooms": stats}  # type: ignore[method-assign]
    got = samples(render(make_registry(manager, top_rooms=5)).decode())
    rooms = {
        dict(labels)["room"]: v
        for (name, labels), v in got.items()
        if name == "lucent_ws_room_members"
    }
    assert rooms == {"room50": 50, "room49": 49, "room48": 48, "room47": 47, "room46": 46}
    assert got[("lucent_ws_rooms", ())] == 50


def test_each_registry_is_private() -> None:
    from prometheus_client import REGISTRY

    make_registry(WebSocketManager(heartbeat=None))
    assert REGISTRY.get_sample_value("lucent_ws_connections") is None
