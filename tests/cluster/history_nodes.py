"""Real ``run.py`` nodes with history rooms (a ``--config`` TOML file) over one Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ..hubprocess import HubProcess, hub_process

TOKEN = "history-cluster-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HISTORY_PATTERN = "h:*"
T = TypeVar("T")


def write_config(tmp_path: Path, history_size: int = 10_000, recover_max: int = 300) -> Path:
    """A config file declaring the history rooms ``h:*`` (nothing trimmed during a test)."""
    path = tmp_path / "history.toml"
    path.write_text(
        f"recover_max = {recover_max}\n"
        "[[rooms]]\n"
        f'pattern = "{HISTORY_PATTERN}"\n'
        f"history_size = {history_size}\n"
        "history_ttl = 600\n"
    )
    return path


async def start_nodes(
    stack: AsyncExitStack,
    count: int,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    recover_max: int = 300,
) -> list[HubProcess]:
    """``count`` nodes sharing ``redis_url`` under ``prefix``, started in parallel."""
    config = write_config(tmp_path, recover_max=recover_max)
    hubs = [
        stack.enter_async_context(
            hub_process(
                "--config", str(config),
                "--redis-url", redis_url,
                "--redis-prefix", prefix,
                "--admin-token", TOKEN,
                "--lease", "2",
                "--no-heartbeat",
                "--rate-limit", "0",
                "--max-connections", "5000",
                "--log-level", "warning",
                tmp_path=tmp_path,
            )
        )
        for _ in range(count)
    ]  # fmt: skip
    return list(await asyncio.gather(*hubs))


def ws_url(hub: HubProcess) -> str:
    return f"ws://127.0.0.1:{hub.port}/ws"


async def admin(
    session: aiohttp.ClientSession, hub: HubProcess, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{hub.port}/admin{path}"
    async with session.request(method, url, json=body, headers=AUTH) as resp:
        return resp.status, await resp.json()


async def connections_on(session: aiohttp.ClientSession, hubs: Sequence[HubProcess]) -> list[int]:
    """Each node's cluster-wide connection count."""
    counts = []
    for hub in hubs:
        status, stats = await admin(session, hub, "GET", "/stats")
        assert status == 200, stats
        counts.append(int(stats["connections"]))
    return counts


async def bounded(jobs: Iterable[Callable[[], Awaitable[T]]], parallel: int = 50) -> list[T]:
    """Run the jobs, at most ``parallel`` at once (connects and joins); their results."""
    gate = asyncio.Semaphore(parallel)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


class Clock:
    """Seconds since the scenario started, for the timeline the tests print."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start
