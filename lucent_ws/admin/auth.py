"""Admin authentication: a bearer token for the API, cookie sessions with CSRF for the dashboard.

The token is compared in constant time. A dashboard login trades the token for
a random session id kept in an HttpOnly, SameSite=Strict cookie scoped to the
admin prefix; every state-changing request made with that cookie must carry the
session's CSRF token (``X-CSRF-Token`` header or ``csrf`` form field).
Sessions live in memory and are stored under a hash of their id, so looking
one up leaks no timing about valid ids.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..auth import bearer_token, same_secret, secret_digest
from ..errors import ConfigurationError

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "AdminAuth",
    "AdminSession",
    "announce_generated_token",
    "generate_token",
]

SESSION_COOKIE = "lucent_ws_admin"
CSRF_COOKIE = "lucent_ws_login_csrf"
CSRF_HEADER = "X-CSRF-Token"


def generate_token() -> str:
    """A fresh random admin token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def announce_generated_token(dashboard_url: str, token: str) -> None:
    """Print a generated admin token, once, as a dashboard link: the only secret ever shown.

    On stdout, never in the log; in the URL's fragment, which browsers never
    send, so it reaches no access log either.
    """
    print(
        f"admin dashboard: {dashboard_url}#token={token} "
        "(admin token generated for this run: the part after #token=)",
        flush=True,
    )


@dataclass(frozen=True, slots=True)
class AdminSession:
    """A dashboard session: its CSRF token and when it expires."""

    csrf: str
    expires_at: float


class AdminAuth:
    """Checks admin tokens and keeps dashboard sessions."""

    def __init__(
        self,
        token: str,
        *,
        session_ttl: float = 12 * 3600.0,
        max_sessions: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise ConfigurationError("the admin token must not be empty")
        self._token = token
        self._token_digest = secret_digest(token)
        self.session_ttl = session_ttl
        self._max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[bytes, AdminSession] = OrderedDict()

    def reveal_token(self) -> str:
        """The token itself, for the one-time announcement of a generated token."""
        return self._token

    def check_token(self, given: str) -> bool:
        """True if ``given`` is the admin token."""
        return hmac.compare_digest(secret_digest(given), self._token_digest)

    def check_bearer(self, header: str | None) -> bool:
        """True if an ``Authorization`` header carries the admin token as a bearer."""
        token = bearer_token(header)
        return token is not None and self.check_token(token)

    def open_session(self) -> tuple[str, AdminSession]:
        """Start a session; returns its id (the cookie value) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = AdminSession(
            csrf=secrets.token_urlsafe(32), expires_at=self._clock() + self.session_ttl
        )
        self._sessions[secret_digest(session_id)] = session
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        return session_id, session

    def get_session(self, session_id: str | None) -> AdminSession | None:
        """The live session with this id, or None (expired sessions are dropped)."""
        if not session_id:
            return None
        key = secret_digest(session_id)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[key]
            return None
        return session

    def close_session(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        if session_id:
            self._sessions.pop(secret_digest(session_id), None)

    @staticmethod
    def new_csrf() -> str:
        """A random CSRF value."""
        return secrets.token_urlsafe(32)

    @staticmethod
    def check_csrf(session: AdminSession, given: str | None) -> bool:
        """True if ``given`` is the session's CSRF token."""
        return given is not None and same_secret(given, session.csrf)
