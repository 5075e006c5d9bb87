"""Typed ``web.AppKey``s under which lucent_ws stores its state in an aiohttp app."""

from __future__ import annotations

from aiohttp import web

from .handler import HubState, WebSocketHandler
from .manager import WebSocketManager

__all__ = ["HANDLER_KEY", "MANAGER_KEY", "STATE_KEY"]

MANAGER_KEY = web.AppKey("lucent_ws.manager", WebSocketManager)
"""The :class:`WebSocketManager` the app serves (``request.config_dict[MANAGER_KEY]``)."""

HANDLER_KEY = web.AppKey("lucent_ws.handler", WebSocketHandler)
"""The WebSocket endpoint's handler, with its limits and hooks."""

STATE_KEY = web.AppKey("lucent_ws.state", HubState)
"""Shutdown state: ``draining`` once the app began shutting down."""
