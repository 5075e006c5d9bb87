"""The admin HTTP API, OpenAPI document, Prometheus metrics and dashboard.

:func:`create_admin_app` returns an aiohttp app to mount at ``/admin/``
(``create_app()`` does this by itself).
"""

from __future__ import annotations

from .app import create_admin_app
from .keys import ADMIN_KEY, AdminState

__all__ = ["ADMIN_KEY", "AdminState", "create_admin_app"]
