"""1,000 v1 subscribers vs 1,000 v2 subscribers of one hub: CPU per delivery, alternated."""

from __future__ import annotations

import statistics

from bench.context import Context
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import LUCENT

SUBSCRIBERS = 1000
INFLIGHT = 8
ROUNDS = 3  # v1, v2, v1, v2, ...: the machine's noise falls on both alike
WARMUP = 3.0


async def run(ctx: Context) -> Result:
    result = Result("fanout_v2")
    async with ctx.server(LUCENT) as server:
        result.commands[LUCENT.name] = server.argv
        rigs = {
            "v1": FanoutRig(server, room="bench:v1"),
            "v2": FanoutRig(server, room="bench:v2", path="/ws?v=2"),
        }
        for rig in rigs.values():
            await rig.grow(SUBSCRIBERS)
        samples: dict[str, list[float]] = {name: [] for name in rigs}
        for _ in range(ROUNDS):
            for name, rig in rigs.items():
                figures = await rig.throughput(ctx.seconds(5), INFLIGHT, warmup=WARMUP)
                bad = figures["lost"] + figures["duplicated"] + figures["reordered"]
                result.check(f"{name} lost + duplicated + reordered", bad, "<=", 0)
                samples[name].append(figures["server_us_per_delivery"])
        for rig in rigs.values():
            rig.close()
    for name, values in samples.items():
        result.figures[name] = {
            "server_us_per_delivery": statistics.median(values),
            "samples": values,
        }
    ratio = statistics.median(samples["v2"]) / statistics.median(samples["v1"])
    result.figures["v2_over_v1"] = ratio
    result.check("v2 room / v1 room CPU per delivery (median)", ratio, "<=", 1.10, "x")
    return result


SCENARIO = Scenario("fanout_v2", __doc__ or "", run)
