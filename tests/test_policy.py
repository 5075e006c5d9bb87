"""Room policies: matching, validation, and the configuration file that declares them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lucent_ws import ConfigurationError
from lucent_ws.configfile import load_config
from lucent_ws.policy import DEFAULT_POLICY, Policies, RoomPolicy


def test_exact_names_win_then_the_longest_prefix_then_the_default() -> None:
    chat = RoomPolicy("chat:*", presence=True)
    vip = RoomPolicy("chat:vip:*", max_members=10)
    lobby = RoomPolicy("chat:lobby", client_publish="none")
    policies = Policies([chat, vip, lobby])
    assert policies.for_room("chat:1") is chat
    assert policies.for_room("chat:vip:7") is vip
    assert policies.for_room("chat:lobby") is lobby
    assert policies.for_room("chat:lobby2") is chat
    assert policies.for_room("posts") is DEFAULT_POLICY
    assert policies.for_room("chat:") is chat
    assert list(policies) == [lobby, vip, chat]


def test_a_star_pattern_replaces_the_default() -> None:
    everything = RoomPolicy("*", client_publish="none")
    assert Policies([everything]).for_room("anything") is everything


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"pattern": ""}, "pattern"),
        ({"pattern": "a*b"}, "pattern"),
        ({"pattern": "a**"}, "pattern"),
        ({"pattern": "a", "client_publish": "all"}, "client_publish"),
        ({"pattern": "a", "history_size": -1}, "negative"),
        ({"pattern": "a", "history_ttl": 0}, "history_ttl"),
        ({"pattern": "a", "join_leave": True}, "join_leave needs presence"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(kwargs: dict[str, object], text: str) -> None:
    with pytest.raises(ConfigurationError, match=text):
        RoomPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_same_pattern_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        Policies([RoomPolicy("a*"), RoomPolicy("a*", presence=True)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--heartbeat-interval", type=float, default=30.0)
    p.add_argument("--path", type=str, default="/ws")
    p.add_argument("--no-heartbeat", action="store_true")
    p.add_argument("--allowed-origin", action="append", dest="allowed_origins")
    p.add_argument("--config", type=str)
    return p


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_a_file_sets_flags_and_policies(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
port = 9000
heartbeat_interval = 20
no_heartbeat = true
allowed_origins = ["https://a.example"]

[[rooms]]
pattern = "chat:*"
presence = true
join_leave = true
presence_info = ["userId", "name"]
history_size = 100

[[rooms]]
pattern = "posts"
client_publish = "none"
""",
    )
    config = load_config(path, parser())
    assert config.values == {
        "port": 9000,
        "heartbeat_interval": 20.0,
        "no_heartbeat": True,
        "allowed_origins": ["https://a.example"],
    }
    chat = config.policies.for_room("chat:1")
    assert (chat.presence, chat.join_leave, chat.presence_info) == (True, True, ("userId", "name"))
    assert config.policies.for_room("posts").client_publish == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "key 'port': Not a valid integer."),
        ("port = 1.5", "key 'port': Not a valid integer."),
        ("prot = 1", "key 'prot': Unknown field."),
        ("[[rooms]]\npresence = true", "key 'rooms[0].pattern': Missing data for required field."),
        ("[[rooms]]\npattern = 'a'\nmax_members = -1", "key 'rooms[0].max_members'"),
        ("[[rooms]]\npattern = 'a'\nclient_publish = 'all'", "key 'rooms[0].client_publish'"),
        ("[[rooms]]\npattern = 'a'\njoin_leave = true", "join_leave needs presence"),
        ("port = ", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(write(tmp_path, text), parser())
    line = str(caught.value)
    print(f"FIGURE {line}")
    assert message in line
    assert "\n" not in line


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="No such file"):
        load_config(tmp_path / "nope.toml", parser())
