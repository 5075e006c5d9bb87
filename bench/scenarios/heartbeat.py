"""Heartbeat over 10,000 connections: its sweep, and its effect on fan-out p99 latency.

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


def ping_sweep(conns: list[WsConn]) -> dict[str, Any]:
    """How the heartbeat reached the clients: pings per connection and their spacing.

    The hub sweeps every connection once per interval, spread across the
    interval, so each client should see one ping per interval and the gaps
    between its pings should be close to the interval.
    """
    counts = [len(conn.ping_times) for conn in conns]
    gaps = sorted(
        (later - earlier) / 1e9
        for conn in conns
        for earlier, later in zip(conn.ping_times, conn.ping_times[1:], strict=False)
    )
    return {
        "pings_received": sum(counts),
        "connections_pinged": sum(1 for count in counts if count),
        "pings_per_connection_min": min(counts, default=0),
        "ping_gap_median_s": gaps[len(gaps) // 2] if gaps else 0.0,
        "ping_gap_max_s": gaps[-1] if gaps else 0.0,
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
                figures = await rig.latency(ctx.seconds(60), RATE)
                figures.update(ping_sweep(everyone))
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
        result.check("connections that saw a ping", on["connections_pinged"], ">=", CONNECTIONS - 1)
    return result


SCENARIO = Scenario("heartbeat", __doc__ or "", run)
