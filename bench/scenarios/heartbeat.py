"""Heartbeat over 10,000 connections: its pass, and its effect on fan-out p99 latency.

The same server and load run twice: without heartbeat, then with a 5 s heartbeat. 1,000
of the 10,000 connections form the fan-out room (5 broadcasts/s); every client answers
each ping with a pong, so nobody should be evicted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.context import Context
from bench.progress import Progress
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import HOST, LUCENT
from bench.wsclient import WsConn, connect_many

CONNECTIONS = 10_000
SUBSCRIBERS = 1000
RATE = 5.0
INTERVAL = 5.0
RUNS = {
    "off": ["--no-heartbeat"],
    "on": ["--heartbeat-interval", f"{INTERVAL:g}", "--heartbeat-timeout", f"{INTERVAL:g}"],
}


def ping_passes(conns: list[WsConn]) -> dict[str, Any]:
    """Group the pings clients saw into passes; how long each took to reach everyone."""
    times = sorted(t for conn in conns for t in conn.ping_times)
    spreads: list[float] = []
    start = prev = None
    for t in times:
        if start is None or prev is None or t - prev > INTERVAL * 1e9 / 2:
            if start is not None and prev is not None:
                spreads.append((prev - start) / 1e6)
            start = t
        prev = t
    if start is not None and prev is not None:
        spreads.append((prev - start) / 1e6)
    return {
        "pings_received": len(times),
        "passes": len(spreads),
        "pass_spread_max_ms": max(spreads, default=0.0),
        "pass_spread_median_ms": sorted(spreads)[len(spreads) // 2] if spreads else 0.0,
    }


def _counter(conns: list[WsConn], total: int) -> Callable[[], str]:
    return lambda: f"{len(conns):,}/{total:,} open"


async def run(ctx: Context) -> Result:
    result = Result("heartbeat")
    if not ctx.wants(LUCENT):
        return result
    WsConn.watch_pings = True
    try:
        for name, extra in RUNS.items():
            async with ctx.server(LUCENT, extra) as server:
                result.commands[f"heartbeat {name}"] = server.argv
                rig = FanoutRig(server)
                await rig.grow(SUBSCRIBERS)
                idle: list[WsConn] = []
                rest = CONNECTIONS - SUBSCRIBERS - 1
                async with Progress(f"heartbeat {name}: idle", _counter(idle, rest)):
                    await connect_many(HOST, server.port, rest, concurrency=200, into=idle)
                for conn in idle:
                    conn.drain()
                everyone = [*rig.subs, *idle]
                for conn in everyone:
                    conn.ping_times.clear()
                figures = await rig.latency(ctx.seconds(20), RATE)
                figures.update(ping_passes(everyone))
                figures["evicted"] = sum(conn.closed.done() for conn in everyone)
                result.figures[f"heartbeat {name}"] = figures
                rig.close()
                for conn in idle:
                    conn.abort()
    finally:
        WsConn.watch_pings = False
    off, on = result.figures.get("heartbeat off"), result.figures.get("heartbeat on")
    if off and on:
        ratio = on["p99_ms"] / off["p99_ms"]
        result.figures["p99_on_over_off"] = ratio
        result.check("fan-out p99 with heartbeat / without", ratio, "<=", 1.2, "x")
        result.check("connections evicted despite pongs", on["evicted"], "<=", 0)
        result.check("heartbeat passes seen", on["passes"], ">=", 1)
    return result


SCENARIO = Scenario("heartbeat", __doc__ or "", run)
