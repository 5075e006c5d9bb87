"""The aiohttp adapter for one WebSocket endpoint: handshake checks, then the read loop.

Thin by design: the handshake checks (draining, connection limit, Origin,
authentication) run before the upgrade; afterwards every frame goes to the
pure :class:`~lucent_ws.session.Session` and every write goes through the
manager's outbound path, straight to the transport.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard

from aiohttp import WSMsgType, web

from .auth import (
    BEARER_SUBPROTOCOL,
    EXPIRES_AT,
    Authenticator,
    Identity,
)
from .codes import CloseCode, EvictionReason
from .config import DEFAULT_RECONNECT_WITHIN, Limits
from .envelope import V1, V2
from .errors import (
    AuthenticationFailed,
    HandshakeError,
    HostRejected,
    OriginRejected,
    ServiceUnavailable,
    UnsupportedVersion,
)
from .hooks import Hooks, call
from .hosts import HostPolicy
from .lingering import SocketGuard, guard_socket
from .manager import WebSocketManager
from .origin import OriginPolicy
from .pending import release_pending
from .session import Session

__all__ = ["HubState", "WebSocketHandler", "websocket_response"]

logger = logging.getLogger("lucent_ws.handler")

_ABNORMAL_CLOSURE = 1006  # RFC 6455: the connection ended without a close frame


@dataclass(slots=True)
class HubState:
    """Mutable state shared by an endpoint and its app."""

    draining: bool = False
    """True once shutdown began: new handshakes get 503."""
    handshakes: int = 0
    """Handshakes in progress, counted against the connection limit."""
    reconnect_within: float = DEFAULT_RECONNECT_WITHIN
    """The drain hint's window (seconds) sent to v2 clients before 1001; 0: none."""


@dataclass(frozen=True, slots=True)
class WebSocketHandler:
    """One WebSocket endpoint: its manager, limits, hooks and shutdown state.

    :meth:`handle` is the aiohttp request handler.
    """

    manager: WebSocketManager
    limits: Limits
    origins: OriginPolicy
    hooks: Hooks = field(default_factory=Hooks)
    authenticate: Authenticator | None = None
    require_auth: bool = False
    state: HubState = field(default_factory=HubState)
    hosts: HostPolicy = field(default_factory=HostPolicy)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Check the handshake, upgrade, then serve the connection until it closes."""
        state = self.state
        state.handshakes += 1  # counted against the connection limit until registered
        try:
            try:
                version = _version(request)
                identity = await self._check_handshake(request)
            except HandshakeError as exc:
                self.manager.refuse_handshake(exc.reason)
                return _refusal(exc)
            except Exception:
                # A bug in the authenticate hook fails closed, with the traceback logged.
                logger.exception("authenticate hook failed; handshake refused")
                self.manager.refuse_handshake("auth_error")
                return web.json_response(
                    {"error": "internal_error", "message": "Authentication failed"}, status=500
                )
            ws = websocket_response(self.limits, self.manager.close_timeout)
            await ws.prepare(request)
        finally:
            state.handshakes -= 1
        transport = request.transport
        if transport is None:  # the client vanished during the upgrade
            return ws
        release_pending(transport)  # upgraded: no longer under the pre-upgrade limits
        if state.draining:  # shutdown began while this handshake was in flight
            await ws.close(code=CloseCode.GOING_AWAY, message=b"Server shutting down")
            return ws

        guard: SocketGuard | None = None

        async def close(code: int, message: str) -> None:
            await ws.close(code=code, message=message.encode())
            if guard is not None:
                # ws.close() may return while the guard still lingers; whoever awaits the
                # close (the shutdown above all: the process must not exit with the
                # client's flood unread) waits for the socket's real end. The manager's
                # close timeout bounds the wait, then aborts.
                await guard.wait_closed()

        conn = self.manager.connect(
            transport,
            close,
            request=request,
            meta=identity,
            max_outbound_buffer=self.limits.max_outbound_buffer,
            version=version,
        )
        session = Session(self.manager, conn, self.limits, hooks=self.hooks)
        guard = guard_socket(
            transport,
            linger=self.manager.close_timeout,
            on_unmasked=lambda: self.manager.evict(
                conn.id,
                CloseCode.PROTOCOL_ERROR,
                EvictionReason.PROTOCOL_ERROR,
                "Client frames must be masked",
            ),
        )
        expiry = self._schedule_expiry(conn.id, identity)
        try:
            if self.hooks.on_connect is not None:
                await self._run_hook(session, self.hooks.on_connect, conn)
            await self._read_loop(ws, session)
        except ConnectionError:
            pass  # the peer reset or vanished mid-write: a disconnect, not an error
        except Exception:
            logger.exception("connection %s failed", conn.id)
            self.manager.evict(
                conn.id, CloseCode.INTERNAL_ERROR, EvictionReason.INTERNAL_ERROR, "Internal error"
            )
        finally:
            if expiry is not None:
                expiry.cancel()
            self.manager.remove(conn.id)
            if self.hooks.on_disconnect is not None:
                code = ws.close_code if ws.close_code is not None else _ABNORMAL_CLOSURE
                await self._run_hook(session, self.hooks.on_disconnect, conn, int(code))
        return ws

    @staticmethod
    async def _run_hook(session: Session, hook: Callable[..., object], *args: object) -> None:
        """Run a connection hook; one that raises is logged and answered with ``internal_error``."""
        try:
            await call(hook, *args)
        except Exception:
            logger.exception("hook %s failed for connection %s", _name(hook), session.conn.id)
            session.internal_error()

    def _schedule_expiry(
        self, conn_id: str, identity: Identity | None
    ) -> asyncio.TimerHandle | None:
        """Close with 1008 when the credentials expire (identity key ``expiresAt``)."""
        expires_at = identity.get(EXPIRES_AT) if identity else None
        if not _is_time(expires_at):
            return None
        return asyncio.get_running_loop().call_later(
            max(0.0, expires_at - time.time()),
            self.manager.evict,
            conn_id,
            CloseCode.POLICY_VIOLATION,
            EvictionReason.EXPIRED,
            "Credentials expired",
        )

    async def _read_loop(self, ws: web.WebSocketResponse, session: Session) -> None:
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                await session.on_text(msg.data)
            elif kind is WSMsgType.BINARY:
                session.on_binary()
            elif kind is WSMsgType.PING:
                if session.on_ping_frame():  # False over the rate limit: no PONG
                    await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                session.on_pong_frame()
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return

    async def _check_handshake(self, request: web.Request) -> Identity | None:
        if self.state.draining:
            raise ServiceUnavailable("Server is shutting down")
        # This handshake is one of state.handshakes, hence the strict comparison.
        if len(self.manager) + self.state.handshakes > self.limits.max_connections:
            raise ServiceUnavailable("Connection limit reached")
        if not self.hosts.allows_request(request):
            raise HostRejected("Host not allowed")
        if not self.origins.allows(request.headers.get("Origin"), request.host):
            raise OriginRejected("Origin not allowed")
        identity = None
        if self.authenticate is not None:
            result = self.authenticate(request)
            identity = await result if inspect.isawaitable(result) else result
        if identity is None:
            if self.require_auth:
                raise AuthenticationFailed("Authentication required")
            return None
        if not isinstance(identity, Mapping):
            raise TypeError(f"authenticate returned {type(identity).__name__}, not a mapping")
        expires_at = identity.get(EXPIRES_AT)
        if _is_time(expires_at) and expires_at <= time.time():
            raise AuthenticationFailed("Credentials expired")
        return identity


def _version(request: web.Request) -> int:
    """The protocol version the client asks for with ``?v=`` (1 without it)."""
    asked = request.query.get("v")
    if asked is None or asked == "1":
        return V1
    if asked == "2":
        return V2
    raise UnsupportedVersion(
        f"Unsupported protocol version {asked[:16]!r}; this hub speaks 1 and 2"
    )


def _name(hook: Callable[..., object]) -> str:
    return getattr(hook, "__qualname__", type(hook).__name__)


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def websocket_response(limits: Limits, close_timeout: float) -> web.WebSocketResponse:
    """The ``WebSocketResponse`` every lucent_ws endpoint upgrades with.

    Compression off, inbound size capped at ``limits.max_message_size``
    (inclusive), no automatic PONG (PING and PONG frames reach the read loop,
    which answers them and counts them as liveness).
    """
    return web.WebSocketResponse(
        autoping=False,
        compress=False,
        max_msg_size=limits.max_message_size + 1,  # aiohttp's limit is exclusive
        protocols=(BEARER_SUBPROTOCOL,),
        timeout=close_timeout,
    )


def _refusal(exc: HandshakeError) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return web.json_response(
        {"error": exc.reason, "message": exc.message}, status=exc.status, headers=headers
    )
