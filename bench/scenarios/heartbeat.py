"""Heartbeat over 10,000 connections: its sweep, and its effect on fan-out p99 latency.

The same server and load run four times, in two rounds: without heartbeat then with a 5 s
heartbeat, then with then without (the order cancels a drift of the machine's speed);
the ratio is the geometric mean of the two rounds' p99 ratios. 1,000 of the 10,000
connections form the fan-out room (5 broadcasts/s); every client answers
each ping with a pong (while the phase runs, the load client's reader answers for the
room and the idle connections), so nobody should be evicted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
SECONDS = 40.0
FLAGS = {
    "off": ["--no-heartbeat"],
    "on": ["--heartbeat-interval", f"{INTERVAL:g}", "--heartbeat-timeout", f"{INTERVAL:g}"],
}
RUNS = (("off", 1), ("on", 1), ("on", 2), ("off", 2))


def _counter(conns: list[WsConn], total: int) -> Callable[[], str]:
    return lambda: f"{len(conns):,}/{total:,} open"


async def run(ctx: Context) -> Result:
    result = Result("heartbeat")
    if not ctx.wants(LUCENT):
        return result
    WsConn.watch_pings = True
    try:
        for name, round_no in RUNS:
            async with ctx.server(LUCENT, FLAGS[name]) as server:
                result.commands[f"heartbeat {name}"] = server.argv
                rig = FanoutRig(server)
                await rig.grow(SUBSCRIBERS)
                idle: list[WsConn] = []
                rest = CONNECTIONS - SUBSCRIBERS - 1
                async with Progress(f"heartbeat {name}: idle", _counter(idle, rest)):
                    await connect_many(HOST, server.port, rest, concurrency=200, into=idle)
                for conn in idle:
                    conn.drain()
                figures = await rig.latency(ctx.seconds(SECONDS), RATE, watch=idle)
                result.figures[f"heartbeat {name} {round_no}"] = figures
                rig.close()
                for conn in idle:
                    conn.abort()
    finally:
        WsConn.watch_pings = False
    runs = result.figures
    if all(f"heartbeat {name} {round_no}" in runs for name, round_no in RUNS):
        ratios = [
            runs[f"heartbeat on {r}"]["p99_ms"] / runs[f"heartbeat off {r}"]["p99_ms"]
            for r in (1, 2)
        ]
        ratio = math.sqrt(ratios[0] * ratios[1])
        result.figures["p99_on_over_off"] = ratio
        result.figures["p99_on_over_off_rounds"] = ratios
        result.check("fan-out p99 with heartbeat / without", ratio, "<=", 1.2, "x")
        on = [runs[f"heartbeat on {r}"] for r in (1, 2)]
        evicted = max(figures["closed_by_server"] for figures in on)
        pinged = min(figures["connections_pinged"] for figures in on)
        result.check("connections evicted despite pongs", evicted, "<=", 0)
        result.check("connections that saw a ping", pinged, ">=", CONNECTIONS - 1)
    return result


SCENARIO = Scenario("heartbeat", __doc__ or "", run)
