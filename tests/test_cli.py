"""The command line: flags, LUCENT_WS_* environment variables, errors, entry points."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lucent_ws import HANDLER_KEY, MANAGER_KEY, HeartbeatConfig, Limits
from lucent_ws.cli import Settings, build_app, main, parse_args
from lucent_ws.errors import ConfigurationError

from .conftest import require
from .hubprocess import ROOT, hub_process


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LUCENT_WS_* variable from the outside leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("LUCENT_WS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` must fail before it serves; if it got that far, fail instead of hanging."""

    async def serve(*args: Any) -> None:
        raise AssertionError("main() started serving")

    monkeypatch.setattr("lucent_ws.cli.serve", serve)


# (flag, attribute, command-line value, environment value, expected from each)
VALUED_FLAGS: list[tuple[str, str, str, str, Any, Any]] = [
    ("--host", "host", "0.0.0.0", "::1", "0.0.0.0", "::1"),
    ("--port", "port", "9001", "9002", 9001, 9002),
    ("--path", "path", "/live", "/socket", "/live", "/socket"),
    ("--admin-token", "admin_token", "cli-token", "env-token", "cli-token", "env-token"),
    ("--heartbeat-interval", "heartbeat_interval", "45", "60.5", 45.0, 60.5),
    ("--heartbeat-timeout", "heartbeat_timeout", "5", "7.5", 5.0, 7.5),
    ("--max-message-size", "max_message_size", "1024", "2048", 1024, 2048),
    ("--max-rooms", "max_rooms", "5", "6", 5, 6),
    ("--rate-limit", "rate_limit", "0", "12.5", 0.0, 12.5),
    ("--rate-burst", "rate_burst", "10", "20", 10, 20),
    ("--max-outbound-buffer", "max_outbound_buffer", "65536", "131072", 65536, 131072),
    ("--max-connections", "max_connections", "2", "3", 2, 3),
    ("--close-timeout", "close_timeout", "0.5", "1.5", 0.5, 1.5),
    ("--header-timeout", "header_timeout", "2", "3.5", 2.0, 3.5),
    ("--max-pending", "max_pending", "10", "20", 10, 20),
    ("--admin-token-file", "admin_token_file", "/run/a", "/run/b", "/run/a", "/run/b"),
    ("--loop", "loop", "asyncio", "uvloop", "asyncio", "uvloop"),
    ("--log-level", "log_level", "debug", "warning", "debug", "warning"),
]


def env_name(flag: str) -> str:
    return "LUCENT_WS_" + flag.lstrip("-").replace("-", "_").upper()


@pytest.mark.parametrize(
    ("flag", "attr", "cli", "env", "from_cli", "from_env"),
    VALUED_FLAGS,
    ids=[row[0] for row in VALUED_FLAGS],
)
def test_flag_env_and_precedence(
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    attr: str,
    cli: str,
    env: str,
    from_cli: Any,
    from_env: Any,
) -> None:
    default = getattr(parse_args([]), attr)
    assert from_env not in (default, from_cli)
    assert getattr(parse_args([flag, cli]), attr) == from_cli
    monkeypatch.setenv(env_name(flag), env)
    assert getattr(parse_args([]), attr) == from_env
    # The command line wins over the environment.
    assert getattr(parse_args([flag, cli]), attr) == from_cli
    # An empty variable counts as unset.
    monkeypatch.setenv(env_name(flag), "")
    assert getattr(parse_args([]), attr) == default


def test_defaults_match_the_spec() -> None:
    ns = parse_args([])
    assert (ns.host, ns.port, ns.path) == ("127.0.0.1", 8080, "/ws")
    assert (ns.heartbeat_interval, ns.heartbeat_timeout) == (30.0, 10.0)
    assert ns.no_heartbeat is False
    assert ns.allowed_origins == []
    assert ns.admin_token is None
    limits = Limits()
    assert ns.max_message_size == limits.max_message_size == 64 * 1024
    assert ns.max_rooms == limits.max_rooms == 100
    assert (ns.rate_limit, ns.rate_burst) == (100.0, 200)
    assert ns.max_outbound_buffer == 1024 * 1024
    assert ns.max_connections == 10_000


def test_every_flag_documents_its_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text)) - {"--help", "--version"}
    assert {flag for flag, *_ in VALUED_FLAGS} <= flags
    for flag in sorted(flags):
        expected = "LUCENT_WS_ALLOWED_ORIGINS" if flag == "--allowed-origin" else env_name(flag)
        assert expected in text, f"{flag} does not mention {expected}"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("true", True), ("0", False)])
def test_no_heartbeat_from_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    assert parse_args(["--no-heartbeat"]).no_heartbeat is True
    monkeypatch.setenv("LUCENT_WS_NO_HEARTBEAT", raw)
    assert parse_args([]).no_heartbeat is expected


def test_allowed_origins_repeatable_and_comma_separated_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = parse_args(["--allowed-origin", "https://a.example", "--allowed-origin", "*"])
    assert ns.allowed_origins == ["https://a.example", "*"]
    monkeypatch.setenv("LUCENT_WS_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443,,")
    assert parse_args([]).allowed_origins == ["https://a.example", "https://b.example:8443"]
    # The command line replaces the environment's list.
    ns = parse_args(["--allowed-origin", "https://c.example"])
    assert ns.allowed_origins == ["https://c.example"]


def test_allowed_hosts_trust_proxy_and_the_token_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings.from_args(parse_args([])).allowed_hosts == (
        "localhost",
        "127.0.0.1",
        "::1",
        "127.0.0.1",
    )
    assert Settings.from_args(parse_args(["--host", "0.0.0.0"])).allowed_hosts == ()
    ns = parse_args(["--allowed-host", "a.example", "--allowed-host", ".b.example"])
    assert Settings.from_args(ns).allowed_hosts == ("a.example", ".b.example")
    monkeypatch.setenv("LUCENT_WS_ALLOWED_HOSTS", "c.example, d.example")
    monkeypatch.setenv("LUCENT_WS_TRUST_PROXY", "1")
    settings = Settings.from_args(parse_args([]))
    assert settings.allowed_hosts == ("c.example", "d.example")
    assert settings.trust_proxy is True
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    settings = Settings.from_args(parse_args(["--admin-token-file", str(token_file)]))
    assert (settings.admin_token, settings.admin_token_generated) == ("from-a-file", False)
    assert settings.warnings == ()
    flagged = Settings.from_args(parse_args(["--admin-token", "t"]))
    assert any("readable by every local user" in w for w in flagged.warnings)
    monkeypatch.setenv("LUCENT_WS_ADMIN_TOKEN", "t")
    assert Settings.from_args(parse_args([])).warnings == ()  # the variable is not in ps
    with pytest.raises(ConfigurationError):
        Settings.from_args(parse_args(["--admin-token-file", str(tmp_path / "missing")]))
    with pytest.raises(ConfigurationError):
        Settings.from_args(parse_args(["--admin-token-file", str(token_file)]))  # and the var


def test_build_app_applies_the_flags() -> None:
    ns = parse_args(
        [
            "--path",
            "/live",
            "--heartbeat-interval",
            "20",
            "--heartbeat-timeout",
            "4",
            "--max-message-size",
            "1000",
            "--max-rooms",
            "3",
            "--rate-limit",
            "5",
            "--rate-burst",
            "9",
            "--max-outbound-buffer",
            "70000",
            "--max-connections",
            "2",
            "--close-timeout",
            "0.75",
            "--allowed-origin",
            "https://a.example",
            "--admin-token",
            "t0k3n",
        ]
    )
    app = build_app(ns)
    handler = app[HANDLER_KEY]
    assert handler.limits == Limits(
        max_message_size=1000,
        max_rooms=3,
        rate_limit=5,
        rate_burst=9,
        max_outbound_buffer=70000,
        max_connections=2,
    )
    assert handler.origins.allows("https://a.example", "127.0.0.1:8080")
    assert not handler.origins.allows("https://b.example", "127.0.0.1:8080")
    manager = app[MANAGER_KEY]
    assert manager.close_timeout == 0.75
    assert manager.heartbeat_config == HeartbeatConfig(interval=20, timeout=4)
    assert {r.resource.canonical for r in app.router.routes() if r.name == "lucent_ws"} == {"/live"}


def test_build_app_without_heartbeat() -> None:
    app = build_app(parse_args(["--no-heartbeat"]))
    assert app[MANAGER_KEY].heartbeat_config is None


@pytest.mark.usefixtures("no_serving")
def test_bad_heartbeat_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--heartbeat-interval", "5", "--heartbeat-timeout", "10", "--port", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "heartbeat timeout (10.0s) must not exceed its interval (5.0s)" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "not-a-number"],
        ["--loop", "gevent"],
        ["--unknown-flag"],
        ["--log-level", "chatty"],
    ],
)
@pytest.mark.usefixtures("no_serving")
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bad_environment_value_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LUCENT_WS_PORT", "eighty")
    with pytest.raises(SystemExit) as info:
        parse_args([])
    assert info.value.code == 2
    assert "LUCENT_WS_PORT" in capsys.readouterr().err


def test_bad_heartbeat_from_run_py_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "run.py", "--heartbeat-interval", "1", "--heartbeat-timeout", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "heartbeat timeout" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_m_lucent_ws_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lucent_ws", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: lucent-ws" in result.stdout
    assert "--heartbeat-interval" in result.stdout


def test_console_script_help_and_version() -> None:
    script = Path(sys.executable).parent / "lucent-ws"
    require(script.exists(), f"the lucent-ws console script next to {sys.executable}")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "LUCENT_WS_" in result.stdout
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0
    assert version.stdout.startswith("lucent_ws ")


async def test_startup_line_prints_the_ws_url_and_it_serves(tmp_path: Path) -> None:
    async with hub_process("--no-heartbeat", "--path", "/live", tmp_path=tmp_path) as hub:
        assert hub.url == f"ws://127.0.0.1:{hub.port}/live"
        async with aiohttp.ClientSession() as session, session.ws_connect(hub.url) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "connected"


async def test_environment_configures_the_server(tmp_path: Path) -> None:
    env = {"LUCENT_WS_PATH": "/from-env", "LUCENT_WS_NO_HEARTBEAT": "1"}
    async with hub_process(tmp_path=tmp_path, env=env) as hub:
        assert hub.url.endswith("/from-env")


async def test_access_log_omits_query_strings(tmp_path: Path) -> None:
    secret = "s3cr3t-query-token"
    async with hub_process("--no-heartbeat", tmp_path=tmp_path) as hub:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(hub.url, params={"token": secret}) as ws:
                await ws.receive_json(timeout=5)
            async with session.get(f"http://127.0.0.1:{hub.port}/nowhere?token={secret}") as r:
                assert r.status == 404
        hub.proc.terminate()
        assert await hub.proc.wait() == 0
        log = hub.stderr()
    assert '"GET /nowhere"' in log
    assert secret not in log


def test_help_never_prints_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LUCENT_WS_ADMIN_TOKEN", "tok-from-env-s3cret")
    monkeypatch.setenv("LUCENT_WS_REDIS_URL", "redis://:pw-s3cret@127.0.0.1:6379/0")
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert "LUCENT_WS_ADMIN_TOKEN" in out
    assert "LUCENT_WS_REDIS_URL" in out
    assert "s3cret" not in out
