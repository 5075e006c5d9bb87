"""The Host check against DNS rebinding (pure).

A page on ``evil.example`` that makes its own name resolve to 127.0.0.1 gets
the browser to talk to a hub on loopback with ``Host: evil.example`` and a
matching ``Origin``: the Origin check alone cannot see it. The Host header is
what such a page cannot fake, so requests naming a host the hub does not serve
are refused (403) before the upgrade and on the admin API.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final

__all__ = ["LOOPBACK_HOSTS", "HostPolicy", "host_name", "is_loopback"]

LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "::1")
"""The names a loopback-bound hub answers to by default (``[::1]`` in a URL)."""

_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::[0-9]{1,5})?")


def host_name(value: str) -> str | None:
    """The host name of a ``Host`` header or an allowlist entry, lowercased, without
    port, brackets or trailing dot; None if it is not a well-formed host."""
    value = value.strip()
    if value.count(":") >= 2 and not value.startswith("["):  # a bare IPv6 address
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:
            return None
    match = _HOST.fullmatch(value)
    if match is None:
        return None
    name = (match.group(1) or match.group(2)).lower().rstrip(".")
    return name or None


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (IPv4-mapped ones too)."""
    if address.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


class HostPolicy:
    """Decides whether a request's ``Host`` names a host this hub serves.

    With an allowlist, only those names pass (``*`` allows any; an entry
    starting with a dot, ``.example.com``, allows that domain and its
    subdomains; ports are ignored). Without one, a request that arrived on a
    loopback address must name a loopback host (:data:`LOOPBACK_HOSTS`), and
    other requests pass. A request without ``Host`` (not a browser) passes.
    """

    __slots__ = ("_any", "_exact", "_suffixes")

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        exact: set[str] = set()
        suffixes: list[str] = []
        allow_any = False
        for entry in allowed_hosts:
            entry = entry.strip()
            if entry == "*":
                allow_any = True
            elif entry.startswith(".") and (name := host_name(entry[1:])) is not None:
                suffixes.append(name)
            elif (name := host_name(entry)) is not None:
                exact.add(name)
        self._any = allow_any
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)

    @property
    def explicit(self) -> bool:
        """True if an allowlist was given."""
        return self._any or bool(self._exact) or bool(self._suffixes)

    def allows(self, host: str | None, local_address: str | None) -> bool:
        """True if a request with this ``Host``, received on ``local_address``, may proceed."""
        if host is None or self._any:
            return True
        name = host_name(host)
        if name is None:
            return False
        if self.explicit:
            return name in self._exact or any(
                name == suffix or name.endswith("." + suffix) for suffix in self._suffixes
            )
        if local_address is not None and is_loopback(local_address):
            return name in LOOPBACK_HOSTS
        return True

    def allows_request(self, request: object) -> bool:
        """:meth:`allows` for an ``aiohttp.web.Request``."""
        headers = getattr(request, "headers", {})
        transport = getattr(request, "transport", None)
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        local = sockname[0] if isinstance(sockname, tuple) and sockname else None
        return self.allows(headers.get("Host"), local if isinstance(local, str) else None)
