"""Real redis-server processes for the scale-out tests, and polling helpers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lucent_ws import WebSocketManager, create_app
from lucent_ws.config import Limits

from ..conftest import require
from ..hubprocess import free_port

REDIS_URL_ENV = "LUCENT_WS_TEST_REDIS_URL"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway ``redis-server`` on a fixed free port that can be stopped and restarted."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server at once (its data is gone: nothing is persisted)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)


def have_redis_server() -> bool:
    return shutil.which("redis-server") is not None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server this test may stop and restart."""
    require(have_redis_server(), "redis-server on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shared_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis for the whole session: ``LUCENT_WS_TEST_REDIS_URL`` or a local redis-server."""
    url = os.environ.get(REDIS_URL_ENV)
    if url:
        yield url
        return
    require(have_redis_server(), f"redis-server on PATH or {REDIS_URL_ENV}")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing one Redis never meet."""
    return f"lucent_ws_test_{uuid.uuid4().hex[:8]}"


async def serve_over_redis(
    aiohttp_server: Any, manager: WebSocketManager, redis_url: str, prefix: str
) -> str:
    """An in-process app for ``manager`` over ``redis_url`` (no admin, no rate limit):
    the ``/ws?v=2`` URL it serves."""
    app = create_app(
        manager=manager,
        redis_url=redis_url,
        redis_prefix=prefix,
        admin=False,
        limits=Limits(rate_limit=0),
    )
    server = await aiohttp_server(app)
    return f"ws://127.0.0.1:{server.port}/ws?v=2"
