"""Admin authentication: bearer token, dashboard sessions, cookie flags and CSRF."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import pytest

from lucent_ws.admin.auth import CSRF_COOKIE, SESSION_COOKIE, AdminAuth
from lucent_ws.admin.views import api
from tests.conftest import Peer

from .conftest import TOKEN, Hub

SAMPLE_PATHS = {
    "/stats": "stats",
    "/stats/history": "stats/history",
    "/rooms": "rooms",
    "/rooms/{room:.+}": "rooms/lobby",
    "/rooms/{room:.+}/history": "rooms/lobby/history",
    "/rooms/{room:.+}/presence": "rooms/lobby/presence",
    "/connections": "connections",
    "/connections/{id}": "connections/abc",
    "/policies": "policies",
    "/broadcast": "broadcast",
    "/send": "send",
    "/openapi.json": "openapi.json",
    "/metrics": "metrics",
}


def test_every_api_route_has_a_sample_path() -> None:
    assert {route.path for route in api.routes} == set(SAMPLE_PATHS)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": TOKEN},
    ],
    ids=["missing", "wrong", "longer", "basic", "empty", "no-scheme"],
)
async def test_every_api_route_refuses_without_the_token(
    hub: Hub, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dozens of wrong tokens from one address: without this, the throttle answers 429.
    monkeypatch.setattr("lucent_ws.admin.throttle.LoginThrottle.retry_after", lambda *_: 0)
    bodies = set()
    for route in api.routes:
        status, body = await hub.call(route.method, SAMPLE_PATHS[route.path], headers=headers)
        assert status == 401, (route.method, route.path)
        bodies.add(str(body))
        async with hub.client.request(
            route.method, hub.admin + SAMPLE_PATHS[route.path], headers=headers
        ) as resp:
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(bodies) == 1  # the same answer for a missing and a wrong token


async def test_unknown_paths_and_wrong_methods_refuse_before_revealing_anything(hub: Hub) -> None:
    assert (await hub.call("GET", "nothing", headers={}))[0] == 401
    assert (await hub.call("POST", "stats", headers={}))[0] == 401


async def test_bearer_scheme_is_case_insensitive(hub: Hub) -> None:
    status, _ = await hub.call("GET", "stats", headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 200


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth = AdminAuth("s3cret")
    assert auth.check_token("s3cret")
    assert not auth.check_token("s3cre")
    assert len(calls) == 2


def test_sessions_expire_and_are_capped() -> None:
    now = [0.0]
    auth = AdminAuth("t", session_ttl=10, max_sessions=2, clock=lambda: now[0])
    first, _ = auth.open_session()
    assert auth.get_session(first) is not None
    now[0] = 10.0
    assert auth.get_session(first) is None
    a, _ = auth.open_session()
    b, _ = auth.open_session()
    c, _ = auth.open_session()
    assert auth.get_session(a) is None  # the oldest made room
    assert auth.get_session(b) is not None
    assert auth.get_session(c) is not None
    auth.close_session(c)
    assert auth.get_session(c) is None


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        AdminAuth("")


def _cookie(resp_headers: list[str], name: str) -> SimpleCookie:
    for header in resp_headers:
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no {name} cookie in {resp_headers!r}")


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def login(hub: Hub, token: str = TOKEN) -> tuple[int, str]:
    """Open the login page, post the form; returns (status, page csrf or body)."""
    page = await hub.client.get(hub.admin)
    assert page.status == 200
    form_csrf = _csrf_from(await page.text())
    resp = await hub.client.post(
        hub.admin + "login", data={"token": token, "csrf": form_csrf}, allow_redirects=False
    )
    return resp.status, await resp.text()


async def test_login_page_is_shown_without_a_session(hub: Hub) -> None:
    resp = await hub.client.get(hub.admin)
    assert resp.status == 200
    html = await resp.text()
    assert 'name="token"' in html
    assert f'action="{hub.admin}login"' in html
    cookie = _cookie(resp.headers.getall("Set-Cookie"), CSRF_COOKIE)[CSRF_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == hub.admin


async def test_login_sets_a_strict_http_only_session_cookie(hub: Hub) -> None:
    page = await hub.client.get(hub.admin)
    form_csrf = _csrf_from(await page.text())
    resp = await hub.client.post(
        hub.admin + "login", data={"token": TOKEN, "csrf": form_csrf}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == hub.admin
    cookie = _cookie(resp.headers.getall("Set-Cookie"), SESSION_COOKIE)[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == hub.admin
    assert int(cookie["max-age"]) > 0
    assert TOKEN not in cookie.value
    dashboard = await hub.client.get(hub.admin)
    html = await dashboard.text()
    assert 'id="stat-connections"' in html
    # the session now reads the API without a bearer token
    assert (await hub.call("GET", "stats", headers={}))[0] == 200


async def test_login_with_a_wrong_token_fails(hub: Hub) -> None:
    status, html = await login(hub, "wrong")
    assert status == 401
    assert "not valid" in html
    assert (await hub.call("GET", "stats", headers={}))[0] == 401


async def test_login_without_the_form_csrf_is_403(hub: Hub) -> None:
    await hub.client.get(hub.admin)
    resp = await hub.client.post(hub.admin + "login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 403
    resp = await hub.client.post(
        hub.admin + "login", data={"token": TOKEN, "csrf": "forged"}, allow_redirects=False
    )
    assert resp.status == 403
    assert (await hub.call("GET", "stats", headers={}))[0] == 401


async def test_state_changes_with_a_session_need_the_csrf_token(
    hub: Hub, peers: list[Peer]
) -> None:
    peers += [await hub.peer("lobby")]
    assert (await login(hub))[0] == 303
    html = await (await hub.client.get(hub.admin)).text()
    csrf = re.search(r'data-csrf="([^"]+)"', html)
    assert csrf
    body = {"room": "lobby", "payload": {"x": 1}}
    assert (await hub.call("POST", "broadcast", json=body, headers={}))[0] == 403
    wrong = {"X-CSRF-Token": "nope"}
    status, answer = await hub.call("POST", "broadcast", json=body, headers=wrong)
    assert (status, answer["error"]) == (403, "csrf")
    assert (await hub.call("DELETE", f"connections/{peers[0].id}", headers={}))[0] == 403
    assert hub.manager.get_connection(peers[0].id) is not None
    good = {"X-CSRF-Token": csrf.group(1)}
    assert await hub.call("POST", "broadcast", json=body, headers=good) == (
        200,
        {"delivered": 1},
    )
    assert await peers[0].recv() == {"x": 1}


async def test_logout_needs_csrf_and_ends_the_session(hub: Hub) -> None:
    assert (await login(hub))[0] == 303
    html = await (await hub.client.get(hub.admin)).text()
    csrf = _csrf_from(html)
    resp = await hub.client.post(hub.admin + "logout", data={}, allow_redirects=False)
    assert resp.status == 403
    resp = await hub.client.post(hub.admin + "logout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert (await hub.call("GET", "stats", headers={}))[0] == 401


async def test_a_wrong_bearer_wins_over_a_valid_session(hub: Hub) -> None:
    assert (await login(hub))[0] == 303
    status, _ = await hub.call("GET", "stats", headers={"Authorization": "Bearer wrong"})
    assert status == 401


async def test_generated_token_is_printed_once_at_startup(
    aiohttp_client: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from lucent_ws import WebSocketManager, create_app

    client = await aiohttp_client(create_app(manager=WebSocketManager(heartbeat=None)))  # type: ignore[operator]
    out = capsys.readouterr().out
    match = re.search(r"admin dashboard: /admin/#token=(\S+) ", out)
    assert match, out
    token = match.group(1)
    assert len(token) >= 40
    assert out.count(token) == 1  # one announcement, the token once
    resp = await client.get("/admin/stats", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


async def test_configured_token_is_never_printed(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TOKEN not in capsys.readouterr().out
