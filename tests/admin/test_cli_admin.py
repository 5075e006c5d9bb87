"""``python run.py``: the generated admin token is printed once; a configured one never is."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from tests.hubprocess import free_port, hub_process


async def _more_lines(proc: asyncio.subprocess.Process, count: int) -> list[str]:
    assert proc.stdout is not None
    lines = []
    async with asyncio.timeout(10):
        for _ in range(count):
            lines.append((await proc.stdout.readline()).decode().strip())
    return lines


async def test_a_generated_token_is_printed_with_the_dashboard_url(tmp_path: Path) -> None:
    async with hub_process(tmp_path=tmp_path, env={"LUCENT_WS_ADMIN_TOKEN": ""}) as hub:
        lines = await _more_lines(hub.proc, 1)
        url = re.search(r"admin dashboard: (http://\S+/admin/)#token=(\S+) ", lines[0])
        assert url, lines
        token = url.group(2)
        assert url.group(1) == f"http://127.0.0.1:{hub.port}/admin/"
        printed = "\n".join(hub.startup_lines + lines)
        assert printed.count(token) == 1, printed  # announced once, in one place
        async with aiohttp.ClientSession() as session:
            async with session.get(
                url.group(1) + "stats", headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                assert resp.status == 200
            async with session.get(url.group(1) + "stats") as resp:
                assert resp.status == 401
        assert token not in hub.stderr()  # printed, never logged


async def test_a_configured_token_is_never_echoed(tmp_path: Path) -> None:
    token = "configured-secret-token-42"
    async with hub_process(tmp_path=tmp_path, env={"LUCENT_WS_ADMIN_TOKEN": token}) as hub:
        lines = await _more_lines(hub.proc, 1)
        assert "admin dashboard: http://127.0.0.1" in lines[0]
        assert token not in "\n".join(hub.startup_lines + lines)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{hub.port}/admin/stats",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            assert resp.status == 200
        assert token not in hub.stderr()


async def test_admin_port_serves_the_admin_apart(tmp_path: Path) -> None:
    admin_port = free_port()
    token = "separate-listener-token"
    async with hub_process(
        "--admin-port", str(admin_port), "--admin-token", token, tmp_path=tmp_path
    ) as hub:
        lines = await _more_lines(hub.proc, 1)
        assert f"http://127.0.0.1:{admin_port}/admin/" in lines[0]
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{hub.port}/admin/stats", headers=auth) as r:
                assert r.status == 404  # not on the public listener
            async with session.get(f"http://127.0.0.1:{admin_port}/admin/stats", headers=auth) as r:
                assert r.status == 200
                assert (await r.json())["connections"] == 0
            async with session.ws_connect(hub.url) as ws:
                await ws.receive_json()
                async with session.get(
                    f"http://127.0.0.1:{admin_port}/admin/stats", headers=auth
                ) as r:
                    assert (await r.json())["connections"] == 1  # one manager, two listeners
