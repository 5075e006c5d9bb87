"""The typed ``web.AppKey`` under which an admin app keeps its state."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..hosts import HostPolicy
from ..manager import WebSocketManager
from .auth import AdminAuth
from .history import StatsHistory
from .routing import Route
from .throttle import LoginThrottle

__all__ = ["ADMIN_KEY", "AdminState"]


@dataclass(frozen=True, slots=True)
class AdminState:
    """Everything the admin views need."""

    manager: WebSocketManager
    auth: AdminAuth
    registry: CollectorRegistry
    history: StatsHistory
    routes: tuple[Route, ...]
    public_routes: frozenset[str]
    hosts: HostPolicy = field(default_factory=HostPolicy)
    """Which ``Host`` names the admin app answers (DNS rebinding)."""
    trust_proxy: bool = False
    """Honour ``X-Forwarded-Proto`` and ``X-Forwarded-For`` from a proxy in front."""
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    """Failed token attempts per client address."""
    top_rooms: int = 20
    """Rooms listed by ``GET /stats`` unless its ``top`` says otherwise."""


ADMIN_KEY = web.AppKey("lucent_ws.admin", AdminState)
"""The admin app's :class:`AdminState` (``request.config_dict[ADMIN_KEY]``)."""
