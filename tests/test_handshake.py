"""Handshake refusals before the upgrade: Origin 403, auth 401, limit and draining 503."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from lucent_ws import STATE_KEY, Limits, WebSocketManager, drain
from lucent_ws.origin import OriginPolicy

from .conftest import UPGRADE_HEADERS, HubFactory, Peer, open_peer
from .waiting import wait_until

Client = TestClient[web.Request, web.Application]


async def handshake_status(client: Client, path: str = "/ws", **kwargs: Any) -> int:
    """Attempt a WebSocket handshake; return 101 on success, else the refusal status."""
    try:
        ws = await client.ws_connect(path, **kwargs)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


async def refused(client: Client, manager: WebSocketManager, **kwargs: Any) -> int:
    """Attempt a handshake that must be refused; return its HTTP status.

    Also checks that no connection was registered in the manager.
    """
    before = len(manager)
    status = await handshake_status(client, **kwargs)
    assert status != 101, "the handshake was accepted"
    assert len(manager) == before
    assert manager.get_stats()["connections"] == before
    return status


# --- Origin ------------------------------------------------------------------------


async def test_no_origin_passes(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub()
    assert await handshake_status(client) == 101
    assert manager.counters.handshake_refusals == {}


async def test_same_host_origin_passes(make_hub: HubFactory) -> None:
    client = await make_hub()
    origin = f"http://127.0.0.1:{client.port}"
    assert await handshake_status(client, origin=origin) == 101


async def test_other_host_origin_is_403(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub()
    status = await refused(client, manager, origin="https://evil.example")
    assert status == 403
    assert manager.counters.handshake_refusals == {"origin": 1}


async def test_403_body_explains(make_hub: HubFactory) -> None:
    client = await make_hub()
    resp = await client.get(
        "/ws",
        headers={**UPGRADE_HEADERS, "Origin": "http://evil.example"},
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "origin"


async def test_other_port_is_403(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub()
    status = await refused(client, manager, origin=f"http://127.0.0.1:{client.port + 1}")
    assert status == 403


async def test_localhost_and_loopback_ip_differ(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub()
    # The test client's Host is 127.0.0.1:PORT; a page on localhost is another site.
    assert await refused(client, manager, origin=f"http://localhost:{client.port}") == 403
    # And the other way round: Host localhost, Origin 127.0.0.1.
    status = await refused(
        client,
        manager,
        origin=f"http://127.0.0.1:{client.port}",
        headers={"Host": f"localhost:{client.port}"},
    )
    assert status == 403
    assert (
        await handshake_status(
            client,
            origin=f"http://localhost:{client.port}",
            headers={"Host": f"localhost:{client.port}"},
        )
        == 101
    )


async def test_allowlist_exact_match(make_hub: HubFactory, manager: WebSocketManager) -> None:
    client = await make_hub(allowed_origins=["https://app.example.com"])
    assert await handshake_status(client, origin="https://app.example.com") == 101
    await wait_until(lambda: len(manager) == 0)
    for origin in (
        "http://app.example.com",  # other scheme
        "https://app.example.com:8443",  # other port
        "https://evil.app.example.com",  # subdomain
        "https://app.example.com.evil.example",  # suffix
        f"http://127.0.0.1:{client.port}",  # same host is not enough with an allowlist
    ):
        assert await refused(client, manager, origin=origin) == 403, origin


async def test_allowlist_star_allows_any(make_hub: HubFactory) -> None:
    client = await make_hub(allowed_origins=["*"])
    assert await handshake_status(client, origin="https://anything.example") == 101


async def test_opaque_null_origin_is_403(make_hub: HubFactory, manager: WebSocketManager) -> None:
    # Sandboxed iframes and file:// pages send "Origin: null".
    client = await make_hub()
    assert await refused(client, manager, origin="null") == 403


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://example.com", "example.com", True),
        ("http://example.com:80", "example.com", True),
        ("https://example.com", "example.com", True),  # TLS proxy in front: Host has no port
        ("https://example.com", "example.com:443", True),
        ("https://example.com", "example.com:80", False),
        ("HTTP://Example.COM", "example.com", True),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("http://[::1]:8080", "[::2]:8080", False),
        ("http://localhost:8080", "127.0.0.1:8080", False),
        ("http://example.com.evil.example", "example.com", False),
        ("ftp://example.com", "example.com", False),
        ("not a url", "example.com", False),
        ("http://example.com", None, False),
    ],
)
def test_origin_policy_without_allowlist(origin: str, host: str | None, allowed: bool) -> None:
    assert OriginPolicy().allows(origin, host) is allowed


def test_origin_policy_allowlist_normalises_case_and_trailing_slash() -> None:
    policy = OriginPolicy(["https://App.example.com/", " http://localhost:3000 "])
    assert policy.allows("https://app.example.com", "anything")
    assert policy.allows("http://localhost:3000", "anything")
    assert not policy.allows("http://127.0.0.1:3000", "127.0.0.1:3000")
    assert OriginPolicy(["*"]).allows("null", None)
    assert OriginPolicy().allows(None, None)


async def test_plain_http_get_is_400_and_not_registered(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub()
    resp = await client.get("/ws")
    assert resp.status == 400
    assert len(manager) == 0


# --- authentication ----------------------------------------------------------------


async def test_require_auth_refuses_anonymous_with_401(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(require_auth=True)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws")
    assert info.value.status == 401
    assert info.value.headers is not None
    assert info.value.headers["WWW-Authenticate"] == "Bearer"
    assert len(manager) == 0
    assert manager.counters.handshake_refusals == {"auth": 1}


async def test_require_auth_with_hook_returning_none_is_401(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    client = await make_hub(authenticate=lambda request: None, require_auth=True)
    assert await refused(client, manager) == 401


async def test_anonymous_allowed_without_require_auth(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(authenticate=lambda request: None)
    peer = await open_peer(client)
    peers.append(peer)
    assert manager.get_meta(peer.id, "userId") is None


def _user_from_header(request: web.Request) -> dict[str, Any] | None:
    user = request.headers.get("X-User")
    return {"userId": int(user), "role": "editor"} if user else None


async def _async_user_from_header(request: web.Request) -> dict[str, Any] | None:
    return _user_from_header(request)


@pytest.mark.parametrize("hook", [_user_from_header, _async_user_from_header])
async def test_authenticate_identity_lands_in_meta(
    hook: Any, make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(authenticate=hook, require_auth=True)
    peer = await open_peer(client, headers={"X-User": "7"})
    peers.append(peer)
    assert manager.get_meta(peer.id, "userId") == 7
    assert manager.get_meta(peer.id, "role") == "editor"
    assert await refused(client, manager) == 401


async def test_identity_is_visible_to_on_join_room(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    # The document's example: only authenticated users may join "private-*" rooms.
    def on_join_room(room: str, conn: Any) -> bool:
        user_id = manager.get_meta(conn.id, "userId")
        return not (room.startswith("private-") and not user_id)

    client = await make_hub(authenticate=_user_from_header, on_join_room=on_join_room)
    alice = await open_peer(client, headers={"X-User": "1"})
    anon = await open_peer(client)
    peers.extend([alice, anon])
    await alice.join("private-1")
    reply = await anon.request({"type": "join", "room": "private-1"})
    assert reply["type"] == "error"
    assert reply["code"] == "forbidden"


async def test_hook_raising_authentication_failed_is_401(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    from lucent_ws import AuthenticationFailed

    def reject(request: web.Request) -> None:
        raise AuthenticationFailed("Invalid token")

    client = await make_hub(authenticate=reject)
    assert await refused(client, manager) == 401


async def test_failing_authenticate_hook_fails_closed(
    make_hub: HubFactory, manager: WebSocketManager
) -> None:
    def broken(request: web.Request) -> None:
        raise RuntimeError("identity service down")

    client = await make_hub(authenticate=broken)
    # Not an anonymous pass: the handshake fails with a server error.
    assert await refused(client, manager) == 500


# --- capacity ----------------------------------------------------------------------


async def test_connection_limit_is_503(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub(limits=Limits(rate_limit=0, max_connections=2))
    first = await open_peer(client)
    peers.append(first)
    peers.append(await open_peer(client))
    assert await handshake_status(client) == 503
    assert len(manager) == 2
    assert manager.counters.handshake_refusals == {"unavailable": 1}
    # A freed slot can be used again.
    await first.ws.close()
    await wait_until(lambda: len(manager) == 1)
    peers.append(await open_peer(client))
    assert len(manager) == 2


async def test_draining_refuses_with_503_and_closes_with_1001(
    make_hub: HubFactory, manager: WebSocketManager, peers: list[Peer]
) -> None:
    client = await make_hub()
    peer = await open_peer(client)
    peers.append(peer)
    # The client reads while the hub drains, as a client does: the drain waits for its
    # answer to the close frame (within the manager's close timeout).
    code, _ = await asyncio.gather(peer.expect_close(), drain(client.server.app))
    assert client.server.app[STATE_KEY].draining
    assert code == 1001
    assert len(manager) == 0
    assert await handshake_status(client) == 503
    assert len(manager) == 0
