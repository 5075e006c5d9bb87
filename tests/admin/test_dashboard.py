"""The dashboard's HTML, static files, headers and history, without a browser."""

from __future__ import annotations

import re

import pytest

from lucent_ws import WebSocketManager
from lucent_ws.admin.dashboard import JINJA_KEY
from lucent_ws.admin.history import StatsHistory

from .conftest import Hub
from .test_auth import login


async def test_templates_autoescape(hub: Hub) -> None:
    from lucent_ws.admin import create_admin_app

    env = create_admin_app(hub.manager, token="t")[JINJA_KEY]
    assert env.autoescape is True
    html = env.get_template("login.html").render(
        prefix="/admin/", csrf="c", version="v", error="<script>alert(1)</script>"
    )
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


async def test_dashboard_links_use_the_mount_prefix(hub: Hub) -> None:
    assert (await login(hub))[0] == 303
    resp = await hub.client.get(hub.admin)
    html = await resp.text()
    for src in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert src.startswith(hub.admin), src
        asset = await hub.client.get(src)
        assert asset.status in (200, 401), src  # 401: the API (openapi.json) needs the token
    assert f'data-prefix="{hub.admin}"' in html


async def test_pages_carry_security_headers(hub: Hub) -> None:
    resp = await hub.client.get(hub.admin)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("dashboard.js", "text/javascript"),
        ("login.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_are_served_without_a_session(
    hub: Hub, name: str, content_type: str
) -> None:
    resp = await hub.client.get(f"{hub.admin}static/{name}")
    assert resp.status == 200
    assert resp.content_type == content_type
    assert len(await resp.read()) > 100


@pytest.mark.parametrize("name", ["nope.js", "..%2Fdashboard.html", "__init__.py"])
async def test_only_the_dashboard_files_are_served(hub: Hub, name: str) -> None:
    resp = await hub.client.get(f"{hub.admin}static/{name}")
    assert resp.status == 404


def test_history_reports_rates_between_samples() -> None:
    manager = WebSocketManager(heartbeat=None)
    now = [100.0]
    history = StatsHistory(
        manager, interval=2, size=3, clock=lambda: now[0], wall_clock=lambda: 5.0
    )
    assert history.sample()["messagesInPerSec"] == 0
    manager.counters.messages_in += 10
    manager.counters.messages_out += 40
    now[0] += 2
    point = history.sample()
    assert point["messagesInPerSec"] == 5
    assert point["messagesOutPerSec"] == 20
    history.sample()
    history.sample()
    assert len(history.samples()) == 3


async def test_history_endpoint_has_samples(hub: Hub) -> None:
    status, body = await hub.call("GET", "stats/history")
    assert status == 200
    assert body["interval"] > 0
    assert body["samples"]
    assert set(body["samples"][0]) == {"t", "connections", "messagesInPerSec", "messagesOutPerSec"}
