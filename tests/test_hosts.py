"""The Host check against DNS rebinding (pure)."""

from __future__ import annotations

import pytest

from lucent_ws.hosts import HostPolicy, host_name, is_loopback


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Example.COM:8080", "example.com"),
        ("localhost.", "localhost"),
        ("[::1]:9000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.example/x", None),
        ("user@evil.example", None),
        ("", None),
        ("[::1", None),
        ("a b", None),
    ],
)
def test_host_names(value: str, name: str | None) -> None:
    assert host_name(value) == name


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.8.9.10")
    assert is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.5")


def test_without_an_allowlist_only_loopback_arrivals_are_checked() -> None:
    policy = HostPolicy()
    assert policy.allows("localhost:8080", "127.0.0.1")
    assert policy.allows("[::1]:8080", "::1")
    assert not policy.allows("evil.example:8080", "127.0.0.1")
    assert not policy.allows("evil.example", "::ffff:127.0.0.1")
    assert policy.allows("hub.lan:8080", "192.168.1.5")  # not reachable by rebinding to loopback
    assert policy.allows(None, "127.0.0.1")  # no Host: not a browser
    assert not policy.allows("bad host", "127.0.0.1")


def test_an_allowlist_replaces_the_default() -> None:
    policy = HostPolicy(["hub.example", ".apps.test", "[::1]"])
    assert policy.allows("HUB.example:443", "127.0.0.1")
    assert policy.allows("apps.test", "10.0.0.1")
    assert policy.allows("a.b.apps.test", "10.0.0.1")
    assert policy.allows("[::1]:8080", "::1")
    assert not policy.allows("notapps.test", "10.0.0.1")
    assert not policy.allows("localhost", "127.0.0.1")
    assert HostPolicy(["*"]).allows("anything.example", "127.0.0.1")
