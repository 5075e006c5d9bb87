"""The ``--config`` TOML file and ``--backlog``, from parse_args up to a real ``run.py`` process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import websockets

from lucent_ws.cli import Settings, build_app, parse_args
from lucent_ws.keys import MANAGER_KEY

from .conftest import require
from .hubprocess import ROOT, hub_process

TOKEN = "config-file-token-0123456789"

HUB_TOML = f"""
admin_token = "{TOKEN}"
no_heartbeat = true
max_rooms = 7
allowed_origins = ["https://a.example"]

[[rooms]]
pattern = "chat:*"
presence = true
join_leave = true
presence_info = ["userId", "name"]
history_size = 100
history_ttl = 300

[[rooms]]
pattern = "chat:vip:*"
max_members = 2

[[rooms]]
pattern = "announcements"
client_publish = "none"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LUCENT_WS_* variable from the outside leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("LUCENT_WS_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "hub.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_precedence_command_line_then_environment_then_file_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        'port = 9100\nmax_rooms = 5\nrate_limit = 7.5\nallowed_origins = ["https://f.example"]\n'
        'trust_proxy = true\nlog_level = "warning"\nbacklog = 300\n',
    )
    ns = parse_args(["--config", str(path)])
    assert (ns.port, ns.max_rooms, ns.rate_limit, ns.backlog) == (9100, 5, 7.5, 300)
    assert (ns.trust_proxy, ns.log_level) == (True, "warning")
    assert ns.allowed_origins == ["https://f.example"]
    assert ns.heartbeat_interval == 30.0  # not in the file: the default
    monkeypatch.setenv("LUCENT_WS_MAX_ROOMS", "6")
    monkeypatch.setenv("LUCENT_WS_ALLOWED_ORIGINS", "https://e.example")
    ns = parse_args(["--config", str(path)])
    assert (ns.port, ns.max_rooms) == (9100, 6)
    assert ns.allowed_origins == ["https://e.example"]
    ns = parse_args(
        ["--config", str(path), "--max-rooms", "4", "--allowed-origin", "https://c.example"]
    )
    assert (ns.port, ns.max_rooms) == (9100, 4)
    assert ns.allowed_origins == ["https://c.example"]
    # The file is named by the variable as well.
    monkeypatch.setenv("LUCENT_WS_CONFIG", str(path))
    assert parse_args([]).rate_limit == 7.5


def test_a_token_in_the_file_is_no_command_line_secret(tmp_path: Path) -> None:
    settings = Settings.from_args(parse_args(["--config", str(write(tmp_path, HUB_TOML))]))
    assert (settings.admin_token, settings.admin_token_generated) == (TOKEN, False)
    assert settings.warnings == ()


def test_build_app_applies_the_files_policies(tmp_path: Path) -> None:
    app = build_app(parse_args(["--config", str(write(tmp_path, HUB_TOML))]))
    policies = app[MANAGER_KEY].policies
    assert policies.for_room("chat:1").presence_info == ("userId", "name")
    assert policies.for_room("chat:vip:1").max_members == 2
    assert policies.for_room("announcements").client_publish == "none"
    assert policies.for_room("other").client_publish == "members"


async def test_a_process_started_with_a_file_shows_and_enforces_its_policies(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, HUB_TOML)
    async with hub_process("--config", str(path), tmp_path=tmp_path) as hub:
        base = f"http://127.0.0.1:{hub.port}/admin/"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(base + "policies", headers=headers) as resp,
        ):
            assert resp.status == 200
            shown = await resp.json()
        print(f"FIGURE /admin/policies: {json.dumps(shown)}")
        assert [p["pattern"] for p in shown["policies"]] == [
            "announcements",
            "chat:vip:*",
            "chat:*",
        ]
        chat = shown["policies"][2]
        assert chat["presence_info"] == ["userId", "name"]
        assert (chat["presence"], chat["join_leave"], chat["history_size"]) == (True, True, 100)
        assert shown["policies"][0]["client_publish"] == "none"
        assert shown["default"]["pattern"] == "*"
        assert shown["default"]["client_publish"] == "members"

        origin = "https://a.example"  # the file's allowed origin
        async with (
            websockets.connect(hub.url, origin=origin) as sender,
            websockets.connect(hub.url, origin=origin) as listener,
        ):
            for ws in (sender, listener):
                assert json.loads(await ws.recv())["type"] == "connected"
                for room in ("announcements", "lobby"):
                    await ws.send(json.dumps({"type": "join", "room": room}))
                    assert json.loads(await ws.recv())["type"] == "joined"
            # client_publish = "none": refused, and nobody receives it
            await sender.send(
                json.dumps({"type": "broadcast", "room": "announcements", "payload": 1, "ref": 1})
            )
            refusal = json.loads(await sender.recv())
            print(f"FIGURE broadcast to announcements: {refusal}")
            assert (refusal["type"], refusal["code"], refusal["ref"]) == (
                "error",
                "publish_forbidden",
                1,
            )
            # an unmatched room keeps the default: members may publish
            await sender.send(json.dumps({"type": "broadcast", "room": "lobby", "payload": 2}))
            got = json.loads(await listener.recv())
            assert got == {"type": "message", "room": "lobby", "from": got["from"], "payload": 2}

            # max_members = 2 in chat:vip:*
            for ws in (sender, listener):
                await ws.send(json.dumps({"type": "join", "room": "chat:vip:1"}))
                assert json.loads(await ws.recv())["type"] == "joined"
            async with websockets.connect(hub.url, origin=origin) as third:
                await third.recv()
                await third.send(json.dumps({"type": "join", "room": "chat:vip:1"}))
                full = json.loads(await third.recv())
                print(f"FIGURE third join of chat:vip:1: {full}")
                assert full["code"] == "room_full"

            # max_rooms = 7 from the file: 3 rooms joined, 4 more, the eighth is refused
            for n in range(4):
                await sender.send(json.dumps({"type": "join", "room": f"r{n}"}))
                assert json.loads(await sender.recv())["type"] == "joined"
            await sender.send(json.dumps({"type": "join", "room": "r-too-many"}))
            assert json.loads(await sender.recv())["code"] == "too_many_rooms"


@pytest.mark.parametrize("page", ["README.md", "docs/guides/operating.md"])
def test_the_documented_example_files_load(page: str, tmp_path: Path) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    assert blocks, f"no TOML example in {page}"
    for block in blocks:
        token = tmp_path / "token"
        token.write_text("t")
        block = re.sub(r'admin_token_file = ".*"', f'admin_token_file = "{token}"', block)
        ns = parse_args(["--config", str(write(tmp_path, block))])
        settings = Settings.from_args(ns)
        print(f"FIGURE {page}: {len(list(settings.policies))} policies")
        assert list(settings.policies)


BAD_FILES = [
    ("unknown key", "prot = 8080\n", "key 'prot': Unknown field."),
    ("wrong type", "port = 'eighty'\n", "key 'port': Not a valid integer."),
    ("wrong type in a room", "[[rooms]]\npattern = 'a'\npresence = 'yes'\n", "rooms[0].presence"),
    ("wrong type of a switch", "no_heartbeat = 1\n", "key 'no_heartbeat'"),
    ("bad pattern", "[[rooms]]\npattern = 'a*b'\n", "rooms[0].pattern"),
    ("bad choice", "[[rooms]]\npattern = 'a'\nclient_publish = 'all'\n", "client_publish"),
    ("invalid TOML", "port = \n", "not valid TOML"),
    ("bad loop", "loop = 'gevent'\n", "'loop'"),
]


@pytest.mark.parametrize(
    ("text", "needle"), [row[1:] for row in BAD_FILES], ids=[r[0] for r in BAD_FILES]
)
def test_a_bad_file_stops_run_py_with_one_line_naming_the_key(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "run.py", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("LUCENT_WS_")},
    )
    print(f"FIGURE exit {result.returncode}: {result.stderr.strip()}")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_file_stops_run_py(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "run.py", "--config", str(tmp_path / "nope.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "No such file" in result.stderr
    assert "Traceback" not in result.stderr


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port``: ``ss``'s Send-Q for a listener."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert len(rows) == 1, out
    return int(rows[0][2])


@pytest.mark.parametrize(("args", "wanted"), [((), 2048), (("--backlog", "333"), 333)])
async def test_the_listening_socket_gets_the_backlog(
    tmp_path: Path, args: tuple[str, ...], wanted: int
) -> None:
    require(shutil.which("ss"), "the ss command (iproute2)")
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())  # noqa: ASYNC240
    async with hub_process("--no-heartbeat", *args, tmp_path=tmp_path) as hub:
        backlog = listen_backlog(hub.port)
    print(f"FIGURE backlog asked {wanted}, somaxconn {somaxconn}, listening with {backlog}")
    assert backlog == min(wanted, somaxconn)
    assert backlog != 128  # aiohttp's default, which this replaces


def test_a_bad_backlog_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from lucent_ws.cli import main

    assert main(["--backlog", "0"]) == 2
    assert "--backlog must be positive" in capsys.readouterr().err
