"""Deliveries/s and p99 latency against room size, lucent_ws and the naive hub; plots them."""

from __future__ import annotations

from typing import Any

from bench.context import Context
from bench.plot import plot_sweep
from bench.progress import say
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import LUCENT, NAIVE

SIZES = (100, 250, 500, 1000, 2000, 5000)
LATENCY_RATE = 2.0


async def run(ctx: Context) -> Result:
    result = Result("sweep")
    for spec in (LUCENT, NAIVE):
        if not ctx.wants(spec):
            continue
        points: dict[str, Any] = {}
        async with ctx.server(spec) as server:
            result.commands[spec.name] = server.argv
            rig = FanoutRig(server, attempts=1)
            for size in SIZES:
                await rig.grow(size)
                thr = await rig.throughput(ctx.seconds(4), inflight=8, warmup=0.5)
                lat = await rig.latency(ctx.seconds(5), LATENCY_RATE)
                points[str(size)] = {
                    "deliveries_per_s": thr["deliveries_per_s"],
                    "server_us_per_delivery": thr["server_us_per_delivery"],
                    "client_us_per_delivery": thr["client_us_per_delivery"],
                    "p50_ms": lat["p50_ms"],
                    "p99_ms": lat["p99_ms"],
                    "max_ms": lat["max_ms"],
                    "lost": thr["lost"] + lat["lost"],
                    "duplicated": thr["duplicated"] + lat["duplicated"],
                    "reordered": thr["reordered"] + lat["reordered"],
                }
            rig.close()
        result.figures[spec.name] = points
    result.notes.append(
        "deliveries/s with 8 broadcasts in flight; "
        f"latency one broadcast at a time, {LATENCY_RATE:g}/s"
    )
    if ctx.plot_path is not None and result.figures:
        plot_sweep(result.to_json(), ctx.plot_path)
        say(f"  plot: {ctx.plot_path}")
    return result


SCENARIO = Scenario("sweep", __doc__ or "", run)
