"""Servers under test: how to start each one, pinned to a CPU, and how to stop it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench import proc

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "bench-token"


@dataclass(frozen=True)
class ServerSpec:
    """A kind of server: a name and the command line that starts it on a port."""

    name: str
    command: Callable[[int, Sequence[str]], list[str]]
    description: str


def _lucent(port: int, extra: Sequence[str]) -> list[str]:
    flags = list(extra)
    if not any(flag.startswith("--heartbeat") for flag in flags):
        flags.append("--no-heartbeat")
    return [
        sys.executable, "run.py", "--host", HOST, "--port", str(port),
        "--max-connections", "20000", "--rate-limit", "0", "--admin-token", TOKEN,
        "--log-level", "warning", "--loop", "uvloop", *flags,
    ]  # fmt: skip


def _baseline(module: str) -> Callable[[int, Sequence[str]], list[str]]:
    def command(port: int, extra: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", module, "--host", HOST, "--port", str(port), *extra]

    return command


LUCENT = ServerSpec("lucent_ws", _lucent, "python run.py (the product)")
NAIVE = ServerSpec(
    "naive", _baseline("bench.baselines.naive"), "naive hub: await send_str(json.dumps()) each"
)
BARE = ServerSpec("bare", _baseline("bench.baselines.bare"), "bare aiohttp WebSocket/JSON handler")
SERVERS = {spec.name: spec for spec in (LUCENT, NAIVE, BARE)}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server started with ``taskset -c CPU``; an async context manager."""

    def __init__(
        self, spec: ServerSpec, cpu: int, log_dir: Path, extra: Sequence[str] = ()
    ) -> None:
        self.spec = spec
        self.cpu = cpu
        self.extra = list(extra)
        self.port = free_port()
        self.log_path = log_dir / f"{spec.name}-{self.port}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def argv(self) -> list[str]:
        """The full command line, CPU pinning included."""
        cmd = self.spec.command(self.port, self.extra)
        if shutil.which("taskset"):
            return ["taskset", "-c", str(self.cpu), *cmd]
        return cmd

    def cpu_seconds(self) -> float:
        return proc.cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proc.rss_bytes(self.pid)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            return subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until its port accepts connections."""
        self.popen = self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited at start:\n{self.log_tail()}")
            try:
                _, writer = await asyncio.open_connection(HOST, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not listen within {timeout}s")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code."""
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server printed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)
