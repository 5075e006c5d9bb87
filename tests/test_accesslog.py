"""The access logger for embedders never records query strings."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest

from lucent_ws import SafeAccessLogger, WebSocketManager, create_app


async def test_query_string_never_reaches_the_access_log(
    aiohttp_server: Any, manager: WebSocketManager, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(manager=manager, heartbeat=False, admin=False)
    server = await aiohttp_server(app, access_log_class=SafeAccessLogger)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.make_url("/ws?token=hunter2-secret")) as ws:
                await ws.receive_json()
            async with session.get(server.make_url("/nowhere?api_key=k3y-secret")) as resp:
                assert resp.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /ws" 101' in line for line in lines), lines
    assert any('"GET /nowhere" 404' in line for line in lines), lines
    assert not any("secret" in line for line in lines)


def test_lines_are_not_formatted_when_info_is_off() -> None:
    logger = logging.getLogger("lucent_ws.tests.access")
    access = SafeAccessLogger(logger, "")
    logger.setLevel(logging.WARNING)
    assert not access.enabled
    logger.setLevel(logging.INFO)
    assert access.enabled
