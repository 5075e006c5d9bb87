"""Security under attack: Origin, authentication, room authorization, rate limit, admin, secrets.

Handshake refusals happen before the upgrade; a room denied by ``on_join_room``
never leaks to the client by any path; a flooding client is answered
``rate_limited`` then closed with 1008 while others carry on; every admin route
refuses anonymous callers; dashboard writes need the CSRF token; and no
credential ever reaches the logs, even at debug level.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from lucent_ws import (
    Connection,
    WebSocketManager,
    create_app,
    jwt_authenticator,
    token_authenticator,
)
from lucent_ws.admin.auth import CSRF_COOKIE, SESSION_COOKIE
from lucent_ws.admin.dashboard import dashboard
from lucent_ws.admin.views import api
from lucent_ws.config import Limits

from .support import ServerProcess, unlimited_session

KEY = "k" * 32
ADMIN = "admin-secret-token-value"


def cookie_session() -> aiohttp.ClientSession:
    """A session that keeps cookies set by 127.0.0.1 (aiohttp drops them by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def cookie(session: aiohttp.ClientSession, name: str) -> str:
    return next(c.value for c in session.cookie_jar if c.key == name)


async def refused(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(url, **kwargs)
    return info.value.status


async def test_origin_and_credentials_are_refused_before_the_upgrade(aiohttp_server: Any) -> None:
    now = int(time.time())
    manager = WebSocketManager(heartbeat=None)
    server = await aiohttp_server(
        create_app(
            manager=manager,
            heartbeat=False,
            admin=False,
            authenticate=jwt_authenticator(KEY),
            require_auth=True,
        )
    )
    keyed = await aiohttp_server(
        create_app(
            heartbeat=False,
            admin=False,
            manager=WebSocketManager(heartbeat=None),
            authenticate=token_authenticator({"right-key": {"userId": "svc"}}),
            require_auth=True,
        )
    )
    url = f"http://127.0.0.1:{server.port}/ws"
    good = jwt.encode({"sub": "u1", "exp": now + 60}, KEY)
    forged = jwt.encode({"sub": "u1", "exp": now + 60}, "x" * 32)
    expired = jwt.encode({"sub": "u1", "exp": now - 60}, KEY)
    async with unlimited_session() as session:
        bearer = {"Authorization": f"Bearer {good}"}
        assert (
            await refused(session, url, headers={**bearer, "Origin": "http://evil.example"}) == 403
        )
        assert await refused(session, url) == 401
        assert await refused(session, url, headers={"Authorization": f"Bearer {forged}"}) == 401
        assert await refused(session, url, headers={"Authorization": f"Bearer {expired}"}) == 401
        assert await refused(session, f"{url}?token=not.a.jwt") == 401
        key_url = f"http://127.0.0.1:{keyed.port}/ws"
        assert await refused(session, key_url, headers={"Authorization": "Bearer wrong"}) == 401
        async with session.get(url, headers={"Authorization": f"Bearer {expired}"}) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert len(manager) == 0
        assert manager.get_stats()["handshakeRefusals"] == {"origin": 1, "auth": 5}
        ws = await session.ws_connect(url, headers=bearer)
        hello = await ws.receive_json(timeout=5)
        assert manager.get_meta(hello["id"], "userId") == "u1"
        await ws.close()


async def test_a_denied_room_never_reaches_the_client(aiohttp_server: Any) -> None:
    manager = WebSocketManager(heartbeat=None)
    insiders: set[str] = set()

    async def on_join_room(room: str, conn: Connection) -> bool:
        await asyncio.sleep(0)
        return room != "secret" or conn.id in insiders

    server = await aiohttp_server(
        create_app(manager=manager, heartbeat=False, on_join_room=on_join_room, admin_token=ADMIN)
    )
    base = f"http://127.0.0.1:{server.port}"
    async with unlimited_session() as session:
        outsider = await session.ws_connect(f"{base}/ws")
        insider = await session.ws_connect(f"{base}/ws")
        await outsider.receive_json(timeout=5)
        insiders.add((await insider.receive_json(timeout=5))["id"])
        await insider.send_json({"type": "join", "room": "secret"})
        assert await insider.receive_json(timeout=5) == {"type": "joined", "room": "secret"}

        # Every way in: join (twice, with and without ref), broadcast without membership.
        for message in (
            {"type": "join", "room": "secret"},
            {"type": "join", "room": "secret", "ref": 1},
            {"type": "broadcast", "room": "secret", "payload": "x"},
        ):
            await outsider.send_json(message)
            reply = await outsider.receive_json(timeout=5)
            assert reply["code"] in {"forbidden", "not_member"}, reply
        # Every way out of the room: client broadcast, server broadcast, admin broadcast.
        await insider.send_json({"type": "broadcast", "room": "secret", "payload": "leak1"})
        manager.broadcast_to_room("secret", "leak2")
        async with session.post(
            f"{base}/admin/broadcast",
            json={"room": "secret", "payload": "leak3"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as resp:
            assert (await resp.json())["delivered"] == 1
        assert manager.get_room_members("secret") == list(insiders)
        manager.send_to(manager.connection_ids()[0], "fence")  # the outsider, first to connect
        assert await outsider.receive_json(timeout=5) == "fence"  # nothing came before it
        assert [await insider.receive_json(timeout=5) for _ in range(2)] == ["leak2", "leak3"]
        await outsider.close()
        await insider.close()


async def test_a_flooder_is_rate_limited_then_closed_and_others_are_not(
    aiohttp_server: Any,
) -> None:
    manager = WebSocketManager(heartbeat=None)
    limits = Limits(rate_limit=50, rate_burst=50)
    server = await aiohttp_server(
        create_app(manager=manager, heartbeat=False, admin=False, limits=limits)
    )
    url = f"http://127.0.0.1:{server.port}/ws"
    async with unlimited_session() as session:
        flooder = await session.ws_connect(url)
        calm = await session.ws_connect(url)
        await flooder.receive_json(timeout=5)
        await calm.receive_json(timeout=5)
        for i in range(400):
            await flooder.send_json({"type": "ping", "ref": i})
        codes: list[str] = []
        async for msg in flooder:
            data = msg.json()
            codes.append(data["type"] if data["type"] == "pong" else data["code"])
        assert flooder.close_code == 1008
        assert codes[:50] == ["pong"] * 50  # the burst is served
        assert codes.count("rate_limited") == limits.error_budget + 1
        assert set(codes) == {"pong", "rate_limited"}
        assert manager.get_stats()["evictions"]["rate_limit"] == 1
        for i in range(20):  # the calm client is served normally, within its rate
            await calm.send_json({"type": "ping", "ref": i})
            assert await calm.receive_json(timeout=5) == {"type": "pong", "ref": i}
        await calm.close()


async def test_admin_routes_refuse_anonymous_callers_and_forms_need_csrf(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dozens of wrong tokens from one address: the throttle would answer 429 (its own
    # test is in test_hostile_http.py).
    monkeypatch.setattr("lucent_ws.admin.throttle.LoginThrottle.retry_after", lambda *_: 0)
    server = await aiohttp_server(
        create_app(manager=WebSocketManager(heartbeat=None), heartbeat=False, admin_token=ADMIN)
    )
    base = f"http://127.0.0.1:{server.port}/admin"
    routes = [r for r in [*api.routes, *dashboard.routes] if not r.public]
    assert len(routes) >= 10
    async with cookie_session() as session:
        for route in routes:
            path = re.sub(r"\{(\w+)(:[^}]*)?\}", "x", route.path)
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                async with session.request(route.method, base + path, headers=headers) as resp:
                    assert resp.status == 401, (route.method, path, headers)
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")

        # A dashboard session: logging in needs the login form's CSRF value...
        async with session.get(f"{base}/") as resp:
            assert resp.status == 200
        csrf = cookie(session, CSRF_COOKIE)
        async with session.post(f"{base}/login", data={"token": ADMIN, "csrf": "forged"}) as resp:
            assert resp.status == 403
        async with session.post(
            f"{base}/login", data={"token": ADMIN, "csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        assert SESSION_COOKIE in {c.key for c in session.cookie_jar}
        # ...and so does every write made with the session cookie.
        body = {"payload": 1}
        async with session.post(f"{base}/broadcast", json=body) as resp:
            assert resp.status == 403
        async with session.post(
            f"{base}/broadcast", json=body, headers={"X-CSRF-Token": "no"}
        ) as resp:
            assert resp.status == 403
        async with session.get(f"{base}/stats") as resp:
            assert resp.status == 200  # reads need no CSRF token


async def test_credentials_never_reach_the_logs(tmp_path: Path) -> None:
    secrets = {
        "admin": ADMIN,
        "header": "hdr-secret-7f3a",
        "cookie": "cookie-secret-91bc",
        "query": "query-secret-55de",
        "subprotocol": "proto-secret-c0ff",
        "jwt": jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, KEY),
        "wrong admin": "wrong-admin-secret-ee12",
    }
    server = ServerProcess(
        ["--log-level=debug", "--no-heartbeat", f"--admin-token={ADMIN}"], tmp_path / "log.txt"
    )
    try:
        await server.ready()
        base = f"http://127.0.0.1:{server.port}"
        async with cookie_session() as session:
            attempts: list[dict[str, Any]] = [
                {"headers": {"Authorization": f"Bearer {secrets['header']}"}},
                {"headers": {"Cookie": f"lucent_ws_token={secrets['cookie']}"}},
                {"params": {"token": secrets["query"]}},
                {"protocols": ("bearer", secrets["subprotocol"])},
                {"params": {"token": secrets["jwt"], "access_token": secrets["jwt"]}},
            ]
            for kwargs in attempts:
                ws = await session.ws_connect(f"{base}/ws", **kwargs)
                await ws.receive_json(timeout=5)
                await ws.send_json({"type": "join", "room": "r"})
                await ws.receive_json(timeout=5)
                await ws.close()
            for token in (ADMIN, secrets["wrong admin"]):
                async with session.get(
                    f"{base}/admin/stats?token={token}",
                    headers={"Authorization": f"Bearer {token}"},
                ):
                    pass
            async with session.get(f"{base}/admin/"):
                pass
            csrf = cookie(session, CSRF_COOKIE)
            async with session.post(
                f"{base}/admin/login", data={"token": ADMIN, "csrf": csrf}, allow_redirects=False
            ) as resp:
                assert resp.status == 303
            secrets["session"] = cookie(session, SESSION_COOKIE)
            secrets["csrf"] = csrf
            async with session.get(f"{base}/admin/stats"):
                pass
    finally:
        assert server.stop() == 0
    output = server.output()
    assert "GET /ws" in output  # the log really was captured, at debug level
    assert "DEBUG" in output
    leaked = [name for name, value in secrets.items() if value in output]
    assert not leaked, leaked
