"""The admin JSON API, standalone and under a prefix: answers and error statuses."""

from __future__ import annotations

import pytest

from lucent_ws import jsoncodec
from tests.conftest import Peer
from tests.waiting import wait_until

from .conftest import AUTH, Hub


async def test_stats_counts_connections_and_rooms(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("lobby"), await hub.peer("lobby", "news")]
    status, body = await hub.call("GET", "stats")
    assert status == 200
    assert body["connections"] == 2
    assert body["rooms"] == {"lobby": 2, "news": 1}
    assert body["heartbeatActive"] is False
    assert set(body) >= {"messagesIn", "messagesOut", "bytesOut", "evictions", "uptime"}


async def test_rooms_are_listed_by_name_and_stats_show_the_largest(
    hub: Hub, peers: list[Peer]
) -> None:
    peers += [await hub.peer("a", "b"), await hub.peer("b")]
    status, body = await hub.call("GET", "rooms")
    assert status == 200
    assert body == {
        "rooms": [{"name": "a", "members": 1}, {"name": "b", "members": 2}],
        "total": 2,
        "next": None,
    }
    status, body = await hub.call("GET", "stats", params={"top": "1"})
    assert status == 200
    assert (body["rooms"], body["roomCount"], body["memberships"]) == ({"b": 2}, 2, 3)


async def test_room_detail_lists_members_with_metadata(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("team/42")]
    hub.manager.set_meta(peers[0].id, "userId", 7)
    status, body = await hub.call("GET", "rooms/team%2F42")
    assert status == 200
    assert body == {
        "name": "team/42",
        "members": [{"id": peers[0].id, "meta": {"userId": 7}}],
        "total": 1,
        "next": None,
    }
    status, body = await hub.call("GET", "rooms/team/42")
    assert status == 200
    assert body["name"] == "team/42"


async def test_unknown_room_is_404(hub: Hub) -> None:
    status, body = await hub.call("GET", "rooms/nowhere")
    assert status == 404
    assert body["error"] == "not_found"


async def test_metadata_json_cannot_express_is_answered_not_500(
    hub: Hub, peers: list[Peer]
) -> None:
    peers += [await hub.peer("x")]
    hub.manager.set_meta(peers[0].id, "tags", {"a"})
    hub.manager.set_meta(peers[0].id, "ratio", float("nan"))
    hub.manager.set_meta(peers[0].id, "odd", "\ud800")
    status, body = await hub.call("GET", f"connections/{peers[0].id}")
    assert status == 200
    assert body["meta"]["tags"] == ["a"]
    assert body["meta"]["ratio"] is None
    assert body["meta"]["odd"] == "?"


async def test_connection_detail(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("x", "a")]
    hub.manager.set_meta(peers[0].id, "name", "ada")
    status, body = await hub.call("GET", f"connections/{peers[0].id}")
    assert status == 200
    assert body["id"] == peers[0].id
    assert body["rooms"] == ["a", "x"]
    assert body["meta"] == {"name": "ada"}
    assert body["remote"] == "127.0.0.1"
    assert body["connectedAt"].endswith("Z")
    assert body["connectedFor"] >= 0
    assert body["idleFor"] >= 0


async def test_connection_list_is_newest_first_and_limited(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer(), await hub.peer(), await hub.peer()]
    status, body = await hub.call("GET", "connections", params={"limit": "2"})
    assert status == 200
    assert body["total"] == 3
    assert [c["id"] for c in body["connections"]] == [peers[2].id, peers[1].id]


@pytest.mark.parametrize("limit", ["0", "abc", "100000"])
async def test_connection_list_rejects_a_bad_limit(hub: Hub, limit: str) -> None:
    status, body = await hub.call("GET", "connections", params={"limit": limit})
    assert status == 422
    assert list(body["fields"]) == ["limit"]


async def test_unknown_connection_is_404(hub: Hub) -> None:
    assert (await hub.call("GET", "connections/nope"))[0] == 404
    status, body = await hub.call("DELETE", "connections/nope")
    assert status == 404
    assert body["error"] == "not_found"


async def test_delete_closes_the_connection_with_4001(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("lobby")]
    status, body = await hub.call("DELETE", f"connections/{peers[0].id}")
    assert (status, body) == (200, {"disconnected": True})
    assert await peers[0].expect_close() == 4001
    assert hub.manager.get_connection(peers[0].id) is None
    assert hub.manager.counters.evictions["kick"] == 1


async def test_broadcast_to_a_room_is_verbatim_and_honours_exclude(
    hub: Hub, peers: list[Peer]
) -> None:
    peers += [await hub.peer("posts"), await hub.peer("posts"), await hub.peer("posts")]
    outsider = await hub.peer("other")
    peers.append(outsider)
    payload = {"type": "post:created", "doc": {"id": 1, "tags": ["a"], "n": None}}
    status, body = await hub.call(
        "POST", "broadcast", json={"room": "posts", "payload": payload, "exclude": [peers[1].id]}
    )
    assert (status, body) == (200, {"delivered": 2})
    assert await peers[0].recv() == payload
    assert await peers[2].recv() == payload
    # The excluded and the outsider got nothing: the next thing they see is a direct send.
    for peer in (peers[1], outsider):
        hub.manager.send_to(peer.id, "marker")
        assert await peer.recv() == "marker"


async def test_broadcast_without_room_reaches_everyone(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer("a"), await hub.peer()]
    status, body = await hub.call("POST", "broadcast", json={"payload": [1, "two", None]})
    assert (status, body) == (200, {"delivered": 2})
    for peer in peers:
        assert await peer.recv() == [1, "two", None]


async def test_broadcast_null_payload_and_empty_room(hub: Hub) -> None:
    assert await hub.call("POST", "broadcast", json={"payload": None}) == (200, {"delivered": 0})
    status, body = await hub.call("POST", "broadcast", json={"room": "ghost", "payload": 1})
    assert (status, body) == (200, {"delivered": 0})


async def test_send_to_one_connection(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer()]
    status, body = await hub.call("POST", "send", json={"id": peers[0].id, "payload": {"hi": 1}})
    assert (status, body) == (200, {"delivered": 1})
    assert await peers[0].recv() == {"hi": 1}
    status, body = await hub.call("POST", "send", json={"id": "nope", "payload": 1})
    assert status == 404
    assert body["error"] == "not_found"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b"\xff\xfe", b"NaN", b"[" * 100_000, '{"payload": 1}'.encode("utf-16")],
    ids=["empty", "syntax", "not-utf8", "nan", "deep", "utf-16"],
)
@pytest.mark.parametrize("path", ["broadcast", "send"])
async def test_a_body_that_is_not_json_is_400(hub: Hub, path: str, raw: bytes) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    status, body = await hub.call("POST", path, data=raw, headers=headers)
    assert status == 400
    assert body["error"] == "invalid_json"
    assert body["message"]


@pytest.mark.parametrize(
    ("path", "sent", "bad_fields"),
    [
        ("broadcast", {}, {"payload"}),
        ("broadcast", [], {"_schema"}),
        ("broadcast", "text", {"_schema"}),
        ("broadcast", {"payload": 1, "room": 5}, {"room"}),
        ("broadcast", {"payload": 1, "room": ""}, {"room"}),
        ("broadcast", {"payload": 1, "room": "r" * 129}, {"room"}),
        ("broadcast", {"payload": 1, "room": "bad\u0007room"}, {"room"}),
        ("broadcast", {"payload": 1, "exclude": "id"}, {"exclude"}),
        ("broadcast", {"payload": 1, "exclude": [1]}, {"exclude"}),
        ("broadcast", {"payload": 1, "extra": True}, {"extra"}),
        ("send", {"payload": 1}, {"id"}),
        ("send", {"id": 3, "payload": 1}, {"id"}),
        ("send", {"id": "x"}, {"payload"}),
    ],
)
async def test_a_body_of_the_wrong_shape_is_422_per_field(
    hub: Hub, path: str, sent: object, bad_fields: set[str]
) -> None:
    status, body = await hub.call("POST", path, json=sent)
    assert status == 422
    assert body["error"] == "invalid_body"
    assert set(body["fields"]) == bad_fields
    assert all(isinstance(m, list) and m for m in body["fields"].values())


async def test_a_payload_too_deep_to_encode_is_422(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer()]
    deep = "[" * 600 + "]" * 600
    raw = f'{{"payload": {deep}}}'.encode()
    headers = {**AUTH, "Content-Type": "application/json"}
    status, body = await hub.call("POST", "broadcast", data=raw, headers=headers)
    assert status in (200, 422)  # the stdlib encoder manages 600 levels, orjson does not
    if status == 422:
        assert list(body["fields"]) == ["payload"]


@pytest.mark.parametrize("path", ["broadcast", "send"])
async def test_a_payload_utf8_cannot_carry_is_refused_not_500(
    hub: Hub, peers: list[Peer], path: str
) -> None:
    peers += [await hub.peer("r")]
    # A lone surrogate escape: the stdlib parser accepts it and the payload cannot be
    # encoded as UTF-8 for delivery (422); orjson refuses the body itself (400).
    target = '"room": "r"' if path == "broadcast" else f'"id": "{peers[0].id}"'
    raw = f'{{"payload": "\\ud800", {target}}}'.encode()
    headers = {**AUTH, "Content-Type": "application/json"}
    status, answer = await hub.call("POST", path, data=raw, headers=headers)
    if jsoncodec.BACKEND == "orjson":
        assert (status, answer["error"]) == (400, "invalid_json"), answer
    else:
        assert status == 422, answer
        assert list(answer["fields"]) == ["payload"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "stats"),
        ("DELETE", "rooms"),
        ("PUT", "rooms/x"),
        ("POST", "connections/x"),
        ("GET", "broadcast"),
        ("GET", "send"),
        ("POST", "metrics"),
        ("POST", "openapi.json"),
    ],
)
async def test_a_wrong_method_is_405(hub: Hub, method: str, path: str) -> None:
    status, body = await hub.call(method, path)
    assert status == 405
    assert body["error"] == "method_not_allowed"


async def test_an_unknown_admin_path_is_404_json(hub: Hub) -> None:
    status, body = await hub.call("GET", "nothing/here")
    assert status == 404
    assert body["error"] == "not_found"


async def test_admin_without_slash_redirects(hub: Hub) -> None:
    resp = await hub.client.get(hub.admin.rstrip("/"), allow_redirects=False)
    assert resp.status == 308
    assert resp.headers["Location"] == "admin/"
    resp = await hub.client.get(hub.admin.rstrip("/"))
    assert resp.status == 200
    assert str(resp.url.path) == hub.admin


async def test_admin_false_leaves_the_admin_out(start_hub: object) -> None:
    from .conftest import HubStarter

    assert callable(start_hub)
    starter: HubStarter = start_hub  # type: ignore[assignment]
    hub = await starter(admin=False)
    status, _ = await hub.call("GET", "stats")
    assert status == 404


async def test_kick_count_is_visible_in_stats(hub: Hub, peers: list[Peer]) -> None:
    peers += [await hub.peer()]
    await hub.call("DELETE", f"connections/{peers[0].id}")
    await wait_until(lambda: len(hub.manager) == 0)
    _, body = await hub.call("GET", "stats")
    assert body["connections"] == 0
    assert body["evictions"]["kick"] == 1
