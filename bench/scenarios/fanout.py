"""1 publisher -> 1,000 subscribers, 8 broadcasts in flight: CPU per delivery vs the naive hub."""

from __future__ import annotations

from bench.context import Context
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import LUCENT, NAIVE

SUBSCRIBERS = 1000
INFLIGHT = 8
WARMUP = 3.0  # seconds: the first seconds after 1,000 connections joined run slower


async def run(ctx: Context) -> Result:
    result = Result("fanout")
    for spec in (LUCENT, NAIVE):
        if not ctx.wants(spec):
            continue
        async with ctx.server(spec) as server:
            result.commands[spec.name] = server.argv
            rig = FanoutRig(server)
            await rig.grow(SUBSCRIBERS)
            result.figures[spec.name] = await rig.throughput(
                ctx.seconds(8), INFLIGHT, warmup=WARMUP
            )
            rig.close()
    lucent, naive = result.figures.get(LUCENT.name), result.figures.get(NAIVE.name)
    if lucent:
        us = lucent["server_us_per_delivery"]
        result.check("lucent_ws server CPU per delivery", us, "<=", 2.0, " µs")
        bad = lucent["lost"] + lucent["duplicated"] + lucent["reordered"]
        result.check("lucent_ws lost + duplicated + reordered", bad, "<=", 0)
        result.check(
            "client CPU / server CPU per delivery (client not the limit)",
            lucent["client_us_per_delivery"] / lucent["server_us_per_delivery"],
            "<=",
            1.0,
        )
    if lucent and naive:
        ratio = naive["server_us_per_delivery"] / lucent["server_us_per_delivery"]
        result.figures["naive_over_lucent"] = ratio
        result.check("naive / lucent_ws CPU per delivery", ratio, ">=", 8.0, "x")
    return result


SCENARIO = Scenario("fanout", __doc__ or "", run)
