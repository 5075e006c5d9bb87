"""``--reconnect-within`` (flag, variable, config key) and the client commands in ``--help``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import websockets

from lucent_ws.cli import build_app, main, parse_args
from lucent_ws.keys import STATE_KEY

from .conftest import UPGRADE_HEADERS
from .hubprocess import ROOT, free_port, hub_process


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LUCENT_WS_"):
            monkeypatch.delenv(name)


def within(argv: list[str]) -> float:
    return build_app(parse_args([*argv, "--admin-token", "t0k3n"]))[STATE_KEY].reconnect_within


def test_reconnect_within_from_the_flag_the_variable_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert within([]) == 5.0
    config = tmp_path / "hub.toml"
    config.write_text("reconnect_within = 12.5\n")
    assert within(["--config", str(config)]) == 12.5
    monkeypatch.setenv("LUCENT_WS_RECONNECT_WITHIN", "8")
    assert within(["--config", str(config)]) == 8.0
    assert within(["--config", str(config), "--reconnect-within", "0"]) == 0.0


def test_a_negative_reconnect_within_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--reconnect-within", "-1"]) == 2
    assert "--reconnect-within must not be negative" in capsys.readouterr().err


def test_a_bad_reconnect_within_in_the_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('reconnect_within = "soon"\n')
    result = subprocess.run(
        [sys.executable, "run.py", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "reconnect_within" in result.stderr


def test_help_names_the_client_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lucent_ws", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    text = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stderr
    assert "--reconnect-within" in text
    assert "lucent-ws listen URL ROOM" in text
    assert "lucent-ws publish URL ROOM JSON" in text
    listen = subprocess.run(
        [sys.executable, "-m", "lucent_ws", "listen", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listen.returncode == 0
    assert "ROOM" in listen.stdout


async def test_a_process_started_with_the_flag_sends_that_hint_on_sigterm(tmp_path: Path) -> None:
    async with hub_process("--no-heartbeat", "--reconnect-within", "1.5", tmp_path=tmp_path) as hub:
        async with websockets.connect(hub.url + "?v=2") as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            hub.proc.send_signal(signal.SIGTERM)
            hint = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert await asyncio.wait_for(hub.proc.wait(), 10) == 0
    print("hint:", hint, "then close", closed.value.rcvd and closed.value.rcvd.code)
    assert hint == {"type": "reconnect", "within": 1.5}
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001


async def test_with_reuse_port_a_fresh_process_takes_every_handshake_while_the_old_drains(
    tmp_path: Path,
) -> None:
    port = free_port()
    flags = ("--no-heartbeat", "--reuse-port", "--close-timeout", "3")
    async with hub_process(*flags, tmp_path=tmp_path, port=port) as old:
        # A peer that never answers the close frame holds the old process's drain open.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in UPGRADE_HEADERS.items())
        writer.write(f"GET /ws?v=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
        assert b" 101 " in await reader.readline()
        async with hub_process(*flags, tmp_path=tmp_path, port=port):
            old.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)  # the old process is draining now
            statuses = []
            for _ in range(40):
                try:
                    async with websockets.connect(f"ws://127.0.0.1:{port}/ws?v=2") as ws:
                        await ws.recv()
                        statuses.append(101)
                except websockets.InvalidStatus as exc:
                    statuses.append(exc.response.status_code)
            still_draining = old.proc.returncode is None
            assert await asyncio.wait_for(old.proc.wait(), 15) == 0
        writer.close()
    print(f"40 handshakes while the old process drained: {statuses.count(101)} upgraded")
    assert still_draining
    assert statuses == [101] * 40
