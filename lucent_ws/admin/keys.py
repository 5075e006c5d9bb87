"""The typed ``web.AppKey`` under which an admin app keeps its state."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..manager import WebSocketManager
from .auth import AdminAuth
from .history import StatsHistory
from .routing import Route

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


ADMIN_KEY = web.AppKey("lucent_ws.admin", AdminState)
"""The admin app's :class:`AdminState` (``request.config_dict[ADMIN_KEY]``)."""
