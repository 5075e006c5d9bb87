"""Admin answers at 50,000 rooms: small, paginated, and never holding the event loop.

500 connections x 100 unique rooms made each ``GET /admin/stats`` 6.7 MB and
163 ms, a stall for every client at each dashboard poll. Now stats carry the
largest rooms plus totals, rooms and members come a page at a time, and the
rooms are walked a slice per loop tick. The test measures the loop's longest
stall while each admin answer is built and compares it with the longest stall
measured in the same test while cheap answers (``/stats/history``) are served:
every answer must stay within that baseline plus 5 ms. Each figure is the best of
three rounds, so that the machine descheduling the test once (other processes share
its two cores) is not mistaken for a stall the answer caused, which would recur in
every round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from lucent_ws import WebSocketManager, create_app
from tests.fakes import fake_connect

TOKEN = "hostile-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTIONS, ROOMS_EACH = 500, 100
SLACK_MS = 5.0


class LagProbe:
    """The longest time the loop was unavailable to a task sleeping 1 ms at a time."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, (time.perf_counter() - start - 0.001) * 1000)

    async def best_of(
        self, work: Callable[[], Awaitable[Any]], rounds: int = 9
    ) -> tuple[float, Any]:
        """The smallest of ``rounds`` worst stalls, and the last result.

        A stall the code causes shows in every round; the machine taking the CPU
        away (other programs on a busy machine) shows in some rounds only.
        """
        best, result = float("inf"), None
        for _ in range(rounds):
            worst, result = await self.measure(work)
            best = min(best, worst)
        return best, result

    async def measure(self, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
        self.worst = 0.0
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.01)
        try:
            result = await work()
        finally:
            self._task.cancel()
        return self.worst, result


def crowded_manager() -> WebSocketManager:
    manager = WebSocketManager(heartbeat=None)
    for i in range(CONNECTIONS):
        conn, _ = fake_connect(manager)
        manager.set_meta(conn.id, "userId", i)
        manager.join_room(conn.id, "everyone")
        for j in range(ROOMS_EACH - 1):
            manager.join_room(conn.id, f"room:{i:03d}:{j:02d}:a-fairly-long-room-name")
    return manager


async def test_admin_answers_at_50000_rooms_never_hold_the_loop(aiohttp_client: Any) -> None:
    manager = crowded_manager()
    rooms = len(manager.list_rooms())
    assert rooms >= 49_500
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(manager=manager, heartbeat=False, admin_token=TOKEN)
    )
    probe = LagProbe()

    async def get(path: str, **params: str) -> tuple[int, int, Any]:
        async with client.get(f"/admin/{path}", headers=AUTH, params=params) as response:
            raw = await response.read()
            json = response.content_type == "application/json"
            return response.status, len(raw), await response.json() if json else raw

    async def repeat(path: str, times: int = 1) -> Any:
        for _ in range(times):
            answer = await get(path)
        return answer

    baseline, _ = await probe.best_of(lambda: repeat("stats/history", 20))

    async def walk_rooms() -> tuple[int, int]:
        seen, pages, cursor = 0, 0, None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            status, _, body = await get("rooms", **params)
            assert status == 200
            seen += len(body["rooms"])
            pages += 1
            cursor = body["next"]
            if cursor is None or pages == 10:
                return seen, pages

    figures: dict[str, tuple[float, Any]] = {
        "stats": await probe.best_of(lambda: repeat("stats")),
        "rooms (10 pages of 1000)": await probe.best_of(walk_rooms),
        "room members": await probe.best_of(lambda: repeat("rooms/everyone")),
        "metrics": await probe.best_of(lambda: repeat("metrics")),
        "connections": await probe.best_of(lambda: repeat("connections")),
    }
    status, size, stats = await get("stats")
    _, _, first = await get("rooms", limit="5000")
    _, _, members = await get("rooms/everyone", limit="100")
    print(f"\n{rooms} rooms; loop stall baseline (stats/history) {baseline:.2f} ms")
    for name, (lag, _) in figures.items():
        print(f"  {name}: longest stall {lag:.2f} ms")
    print(f"  GET /admin/stats: {size} bytes, {len(stats['rooms'])} rooms listed")
    assert status == 200
    assert stats["roomCount"] == rooms
    assert stats["memberships"] == CONNECTIONS * ROOMS_EACH
    assert next(iter(stats["rooms"])) == "everyone"
    assert len(stats["rooms"]) == 20
    assert size < 10_000
    assert figures["rooms (10 pages of 1000)"][1] == (10_000, 10)
    assert first["error"] == "invalid_body"  # limit is capped at 1000
    assert members["total"] == CONNECTIONS
    assert len(members["members"]) == 100
    for name, (lag, _) in figures.items():
        assert lag <= baseline + SLACK_MS, (name, lag, baseline)


async def test_pages_cover_every_room_once(aiohttp_client: Any) -> None:
    manager = WebSocketManager(heartbeat=None)
    conn, _ = fake_connect(manager)
    names = {f"r{i:04d}" for i in range(2500)}
    for name in names:
        manager.join_room(conn.id, name)
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(manager=manager, heartbeat=False, admin_token=TOKEN)
    )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "700", **({"cursor": cursor} if cursor else {})}
        async with client.get("/admin/rooms", headers=AUTH, params=params) as response:
            body = await response.json()
        seen += [room["name"] for room in body["rooms"]]
        assert body["total"] == 2500
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == sorted(names)
    async with client.get("/admin/rooms", headers=AUTH, params={"limit": "5000"}) as response:
        assert response.status == 422
    async with client.get("/admin/rooms", headers=AUTH, params={"cursor": "!!"}) as response:
        assert response.status == 422
