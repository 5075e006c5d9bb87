"""The Origin check against Cross-Site WebSocket Hijacking (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["OriginPolicy"]

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    return host, port if port is not None else _DEFAULT_PORTS.get(scheme)


class OriginPolicy:
    """Decides whether a handshake's ``Origin`` may connect.

    With no allowlist, the Origin's host and port must equal the request's
    ``Host``; with one, the Origin must be listed exactly (``"*"`` allows any).
    A handshake without ``Origin`` (not a browser) always passes.
    """

    __slots__ = ("_allow_any", "_allowed")

    def __init__(self, allowed_origins: Iterable[str] = ()) -> None:
        allowed = {o.strip().rstrip("/").lower() for o in allowed_origins if o.strip()}
        self._allow_any = "*" in allowed
        self._allowed = frozenset(allowed - {"*"})

    def allows(self, origin: str | None, host: str | None) -> bool:
        """True if a handshake with this ``Origin`` and ``Host`` may proceed."""
        if origin is None or self._allow_any:
            return True
        origin = origin.strip().rstrip("/").lower()
        if self._allowed:
            return origin in self._allowed
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in _DEFAULT_PORTS or host is None:
            return False
        # A Host without a port takes the Origin scheme's default, so a TLS proxy
        # in front (browser on 443, server seeing plain HTTP) still matches.
        ours = _host_port(host, parts.scheme)
        theirs = _host_port(parts.netloc, parts.scheme)
        return ours is not None and ours == theirs
