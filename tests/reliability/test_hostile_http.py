"""HTTP-level attacks on a running hub: DNS rebinding, log forging, token guessing, secrets.

- DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name as
  ``Host`` and a matching ``Origin``; the Origin check passed it (101). Now a
  loopback-bound hub answers only localhost, 127.0.0.1, [::1] and its bound
  name: 403 before the upgrade and on the admin API.
- The access log wrote the decoded path: ``%0a`` forged a line, ``%1b`` wrote
  terminal escapes. Now the path is logged as sent.
- 600 wrong admin logins went through in 1.7 s. Now an address gets 429 with
  ``Retry-After`` after 10 wrong tokens in a minute, for the form and the API.
- ``--admin-token`` on the command line is readable through ``ps``: the hub
  warns, and ``--admin-token-file`` reads it from a file.
- Behind a TLS proxy the session cookie was never ``Secure``; with
  ``--trust-proxy``, ``X-Forwarded-Proto: https`` makes it so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import UPGRADE_HEADERS

from .support import ServerProcess

TOKEN = "hostile-http-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def hub(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(
        ["--no-heartbeat", *args],
        tmp_path / "hub.log",
        env={"LUCENT_WS_ADMIN_TOKEN": TOKEN} if env is None else env,
    )
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


async def upgrade_status(port: int, host: str, origin: str | None) -> int:
    headers = {**UPGRADE_HEADERS, "Host": host}
    if origin is not None:
        headers["Origin"] = origin
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/ws", headers=headers) as response,
    ):
        return response.status


async def admin_status(port: int, host: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://127.0.0.1:{port}/admin/stats", headers={**AUTH, "Host": host}
        ) as response,
    ):
        return response.status


async def test_dns_rebinding_is_refused_on_loopback(tmp_path: Path) -> None:
    async with hub(tmp_path) as server:
        port = server.port
        rebound = await upgrade_status(port, f"evil.example:{port}", f"http://evil.example:{port}")
        admin_rebound = await admin_status(port, f"evil.example:{port}")
        own = {
            host: await upgrade_status(port, f"{host}:{port}", f"http://{host}:{port}")
            for host in ("localhost", "127.0.0.1", "[::1]")
        }
        admin_own = await admin_status(port, f"localhost:{port}")
    print(f"\nDNS rebinding: upgrade {rebound}, admin {admin_rebound}; own names {own}")
    assert rebound == 403
    assert admin_rebound == 403
    assert own == {"localhost": 101, "127.0.0.1": 101, "[::1]": 101}
    assert admin_own == 200


async def test_allowed_host_flag_admits_a_proxy_name(tmp_path: Path) -> None:
    async with hub(tmp_path, "--allowed-host", "hub.example", "--allowed-host", ".apps.test") as s:
        named = await upgrade_status(s.port, "hub.example", "https://hub.example")
        sub = await admin_status(s.port, "x.apps.test")
        loopback = await upgrade_status(s.port, f"127.0.0.1:{s.port}", None)
    assert (named, sub, loopback) == (101, 200, 403)


async def test_access_log_cannot_be_forged(tmp_path: Path) -> None:
    async with hub(tmp_path) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /x%0a2026-01-01%20INFO%20forged%20line%1b[2J HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode()
        )
        await reader.read()
        writer.close()
        await asyncio.sleep(0.2)
        log = server.output()
    lines = [line for line in log.splitlines() if "forged" in line]
    print(f"\naccess log: {lines}")
    assert len(lines) == 1
    assert "\x1b" not in log
    assert "/x%0a2026-01-01%20INFO%20forged%20line%1b[2J" in lines[0]


async def test_wrong_admin_tokens_are_throttled_per_address(tmp_path: Path) -> None:
    async with (
        hub(tmp_path) as server,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        base = f"http://127.0.0.1:{server.port}/admin/"
        statuses = []
        started = asyncio.get_running_loop().time()
        for attempt in range(60):
            async with http.get(
                base + "stats", headers={"Authorization": f"Bearer guess-{attempt}"}
            ) as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
                body = await response.json()
        elapsed = asyncio.get_running_loop().time() - started
        async with http.get(base + "stats", headers=AUTH) as response:
            right_token_meanwhile = response.status
        async with http.get(base) as page:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf
        async with http.post(
            base + "login", data={"token": "guess", "csrf": csrf.group(1)}
        ) as login:
            login_status, login_text = login.status, await login.text()
    print(
        f"\n60 wrong tokens in {elapsed:.2f}s: {statuses.count(401)} x 401, "
        f"{statuses.count(429)} x 429 (Retry-After {retry_after}); form login {login_status}"
    )
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}
    assert body["error"] == "too_many_attempts"
    assert "your address" in body["message"]
    assert retry_after is not None
    assert int(retry_after) > 0
    assert right_token_meanwhile == 429  # a right guess cannot be told from a wrong one
    assert login_status == 429
    assert "Too many wrong tokens" in login_text


async def test_admin_token_on_the_command_line_warns_and_a_file_does_not(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with hub(tmp_path, "--admin-token", TOKEN, env={}) as flagged:
        flag_log = flagged.output()
    async with (
        hub(tmp_path, "--admin-token-file", str(token_file), env={}) as from_file,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{from_file.port}/admin/stats", headers=AUTH) as response,
    ):
        file_status, file_log = response.status, from_file.output()
    assert "readable by every local user" in flag_log
    assert TOKEN not in flag_log.replace(f"--admin-token {TOKEN}", "")
    assert file_status == 200
    assert "readable by every local user" not in file_log
    assert TOKEN not in file_log


@pytest.mark.parametrize(("trust", "secure"), [(False, False), (True, True)])
async def test_session_cookie_is_secure_behind_a_tls_proxy(
    tmp_path: Path, trust: bool, secure: bool
) -> None:
    args = ["--trust-proxy"] if trust else []
    async with (
        hub(tmp_path, *args) as server,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        base = f"http://127.0.0.1:{server.port}/admin/"
        proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        async with http.get(base, headers=proxy) as page:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf
        # A Secure cookie is not sent back over plain HTTP: send it as the browser
        # behind the TLS proxy would.
        cookie = f"lucent_ws_login_csrf={csrf.group(1)}"
        async with http.post(
            base + "login",
            data={"token": TOKEN, "csrf": csrf.group(1)},
            headers={**proxy, "Cookie": cookie},
            allow_redirects=False,
        ) as login:
            cookie_header = login.headers.get("Set-Cookie", "")
    print(f"\ntrust-proxy={trust}: {cookie_header.split(';', 1)[1]}")
    assert login.status == 303
    assert ("Secure" in cookie_header) is secure
