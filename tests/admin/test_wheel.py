"""A wheel built from the repo, installed in a fresh venv, serves the dashboard."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import aiohttp
import pytest

from tests.hubprocess import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result.stdout


async def test_installed_wheel_serves_the_dashboard(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT, cwd=ROOT)
    (wheel,) = dist.glob("lucent_ws-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    where = _run(python, "-c", "import lucent_ws; print(lucent_ws.__file__)", cwd=tmp_path)
    assert str(env_dir) in where, where  # the wheel, not the checkout

    port = free_port()
    token = "wheel-test-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCENT_WS_")}
    proc = await asyncio.create_subprocess_exec(
        str(python),
        "-m",
        "lucent_ws",
        "--port",
        str(port),
        "--admin-token",
        token,
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"admin dashboard" not in await proc.stdout.readline():
                pass
        base = f"http://127.0.0.1:{port}/admin/"
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address host
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(base) as resp:
                assert resp.status == 200
                html = await resp.text()
            csrf = re.search(r'name="csrf" value="([^"]+)"', html)
            assert csrf
            async with session.post(
                base + "login", data={"token": token, "csrf": csrf.group(1)}
            ) as resp:
                assert resp.status == 200
                assert 'id="stat-connections"' in await resp.text()
            for name in ("dashboard.js", "dashboard.css", "login.js", "favicon.svg"):
                async with session.get(base + "static/" + name) as resp:
                    assert resp.status == 200, name
    finally:
        proc.terminate()
        await proc.wait()
