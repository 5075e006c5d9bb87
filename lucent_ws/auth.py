"""Handshake authentication: the ``authenticate(request)`` hook and ready-made ones.

An authenticator takes the handshake ``web.Request`` and returns (or resolves
to) an identity mapping, whose keys become the connection's metadata, or None
for an anonymous client. An ``expiresAt`` key (Unix time in seconds) makes the
server close the connection with 1008 when the credentials expire. An
authenticator raises :class:`~lucent_ws.errors.AuthenticationFailed` for
credentials that are present but invalid; the handshake then gets 401.

The ready-made authenticators read one credential from, in this order, the
``Authorization: Bearer`` header, a cookie, the ``Sec-WebSocket-Protocol``
header (a browser sends ``new WebSocket(url, ["bearer", token])``; the server
answers with the ``bearer`` subprotocol) or the query string. Credentials are
never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from .errors import AuthenticationFailed

__all__ = [
    "BEARER_SUBPROTOCOL",
    "EXPIRES_AT",
    "Authenticator",
    "CredentialReader",
    "Identity",
    "bearer_token",
    "hide_offered_protocols",
    "jwt_authenticator",
    "same_secret",
    "secret_digest",
    "token_authenticator",
]

Identity = Mapping[str, Any]
Authenticator = Callable[[web.Request], Identity | Awaitable[Identity | None] | None]
Source = Literal["header", "cookie", "protocol", "query"]

BEARER_SUBPROTOCOL = "bearer"
EXPIRES_AT = "expiresAt"
"""Identity key: Unix time at which the connection's credentials expire."""
ALL_SOURCES: tuple[Source, ...] = ("header", "cookie", "protocol", "query")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value, or None."""
    scheme, _, value = (header or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def secret_digest(value: str) -> bytes:
    """SHA-256 of a secret: fixed-length, for comparing or keying without the secret."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two secrets; their lengths leak nothing either."""
    return hmac.compare_digest(secret_digest(given), secret_digest(expected))


@dataclass(frozen=True, slots=True)
class CredentialReader:
    """Where a credential is looked for, and under which names."""

    sources: Sequence[Source] = ALL_SOURCES
    cookie_name: str = "lucent_ws_token"
    query_param: str = "token"

    def read(self, request: web.Request) -> str | None:
        """The first credential found in the configured sources, or None."""
        for source in self.sources:
            value = getattr(self, f"_from_{source}")(request)
            if value:
                return str(value)
        return None

    @staticmethod
    def _from_header(request: web.Request) -> str | None:
        return bearer_token(request.headers.get("Authorization"))

    def _from_cookie(self, request: web.Request) -> str | None:
        return request.cookies.get(self.cookie_name)

    @staticmethod
    def _from_protocol(request: web.Request) -> str | None:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if BEARER_SUBPROTOCOL in offered:
            index = offered.index(BEARER_SUBPROTOCOL)
            if index + 1 < len(offered):
                return offered[index + 1]
        return None

    def _from_query(self, request: web.Request) -> str | None:
        return request.query.get(self.query_param)


def token_authenticator(
    tokens: Mapping[str, Identity],
    *,
    reader: CredentialReader | None = None,
) -> Authenticator:
    """Authenticate static bearer tokens or API keys.

    ``tokens`` maps each accepted token to the identity it stands for, e.g.
    ``{"k3y": {"userId": "svc-reports", "role": "service"}}``. Tokens are
    compared in constant time.
    """
    reader = reader or CredentialReader()
    table = [(token, dict(identity)) for token, identity in tokens.items()]

    def authenticate(request: web.Request) -> Identity | None:
        credential = reader.read(request)
        if credential is None:
            return None
        found: Identity | None = None
        for token, identity in table:  # no early exit: the time taken reveals nothing
            if same_secret(credential, token):
                found = identity
        if found is None:
            raise AuthenticationFailed("Invalid token")
        return found

    return authenticate


def _default_identity(claims: Mapping[str, Any]) -> Identity:
    identity: dict[str, Any] = {"claims": dict(claims)}
    if "sub" in claims:
        identity["userId"] = claims["sub"]
    return identity


def _with_expiry(identity: Identity, claims: Mapping[str, Any]) -> Identity:
    exp = claims.get("exp")
    if EXPIRES_AT in identity or not isinstance(exp, (int, float)):
        return identity
    return {**identity, EXPIRES_AT: exp}


def jwt_authenticator(
    key: str | bytes,
    *,
    algorithms: Collection[str] = ("HS256",),
    audience: str | None = None,
    issuer: str | None = None,
    leeway: float = 0.0,
    require: Collection[str] = ("exp",),
    identity: Callable[[Mapping[str, Any]], Identity] = _default_identity,
    reader: CredentialReader | None = None,
) -> Authenticator:
    """Authenticate a JWT (PyJWT, extra ``jwt``).

    The token's signature, ``exp`` (required by default), ``nbf``, ``aud`` and
    ``iss`` are checked. ``identity(claims)`` builds the metadata; by default
    ``{"userId": claims["sub"], "claims": claims}``. ``expiresAt`` is set from
    ``exp``, so the connection is closed with 1008 when the token expires.
    """
    import jwt  # optional dependency, imported when used

    reader = reader or CredentialReader()
    options: Any = {"require": list(require)}

    def authenticate(request: web.Request) -> Identity | None:
        token = reader.read(request)
        if token is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options=options,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("Token expired") from None
        except jwt.InvalidTokenError:
            raise AuthenticationFailed("Invalid token") from None
        return _with_expiry(identity(claims), claims)

    return authenticate


class _HideOfferedProtocols(logging.Filter):
    """Redact the subprotocols aiohttp logs when none matches: they may carry a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if "overlap server-known" in str(record.msg) and isinstance(args, tuple) and len(args) == 3:
            record.args = (args[0], "[redacted]", args[2])
        return True


def hide_offered_protocols() -> None:
    """Attach the filter to aiohttp's WebSocket logger once, when an endpoint is set up."""
    ws_logger = logging.getLogger("aiohttp.websocket")
    if not any(isinstance(f, _HideOfferedProtocols) for f in ws_logger.filters):
        ws_logger.addFilter(_HideOfferedProtocols())
