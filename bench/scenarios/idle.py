"""10,000 idle connections: server RSS per connection vs bare aiohttp holding the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bench.context import Context
from bench.progress import Progress
from bench.results import Result
from bench.scenario import Scenario
from bench.servers import BARE, HOST, LUCENT
from bench.wsclient import WsConn, close_all, connect_many

CONNECTIONS = 10_000


def _counter(conns: list[WsConn], total: int) -> Callable[[], str]:
    return lambda: f"{len(conns):,}/{total:,} open"


async def run(ctx: Context) -> Result:
    result = Result("idle")
    for spec in (LUCENT, BARE):
        if not ctx.wants(spec):
            continue
        async with ctx.server(spec) as server:
            result.commands[spec.name] = server.argv
            await asyncio.sleep(1.0)
            before = server.rss_bytes()
            conns: list[WsConn] = []
            label = f"{spec.name}: idle connections"
            async with Progress(label, _counter(conns, CONNECTIONS)):
                await connect_many(HOST, server.port, CONNECTIONS, concurrency=200, into=conns)
                for conn in conns:
                    conn.drain()
                await asyncio.sleep(3.0)
            after = server.rss_bytes()
            alive = sum(not c.closed.done() for c in conns)
            result.figures[spec.name] = {
                "connections": alive,
                "rss_before_mb": before / 2**20,
                "rss_after_mb": after / 2**20,
                "rss_per_connection_kb": (after - before) / CONNECTIONS / 1024,
            }
            await close_all(conns)
    lucent, bare = result.figures.get(LUCENT.name), result.figures.get(BARE.name)
    if lucent and bare:
        ratio = lucent["rss_per_connection_kb"] / bare["rss_per_connection_kb"]
        result.figures["lucent_over_bare"] = ratio
        result.check("RSS per connection, lucent_ws / bare aiohttp", ratio, "<=", 1.2, "x")
    return result


SCENARIO = Scenario("idle", __doc__ or "", run)
