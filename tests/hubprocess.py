"""Run ``python run.py`` as a real subprocess on a free port, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "run.py"
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class HubProcess:
    """A running hub: its process, port, WebSocket URL and the startup output."""

    proc: asyncio.subprocess.Process
    port: int
    url: str
    startup_lines: list[str]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@asynccontextmanager
async def hub_process(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[HubProcess]:
    """Start ``run.py --port FREE *args``; wait until it prints its URL; kill it at the end.

    ``port`` reuses a given port (a restart of the same hub).
    """
    port = port or free_port()
    stderr_path = tmp_path / f"hub-{port}.stderr"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUN_PY),
            "--port",
            str(port),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=full_env,
            cwd=ROOT,
        )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        match = None
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                while match is None:
                    raw = await proc.stdout.readline()
                    if not raw:
                        break
                    lines.append(raw.decode().strip())
                    match = re.search(r"ws://\S+", lines[-1])
        except TimeoutError:
            pass
        assert match, f"no ws:// URL printed: {lines!r}; stderr: {stderr_path.read_text()}"
        yield HubProcess(proc, port, match.group(0), lines, stderr_path)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.read()
