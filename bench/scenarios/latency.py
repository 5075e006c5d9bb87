"""One broadcast at a time: end-to-end latency at N = 1,000 (5/s) and N = 5,000 (2/s)."""

from __future__ import annotations

from bench.context import Context
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import LUCENT

# (subscribers, broadcasts per second, p99 target in ms)
POINTS = ((1000, 5.0, 15.0), (5000, 2.0, 60.0))
# Long enough that one broadcast delayed by a pause of the machine (or a full garbage
# collection in the server) holds well under 1% of the samples: 300 and 120 broadcasts.
SECONDS = 60.0


async def run(ctx: Context) -> Result:
    result = Result("latency")
    if not ctx.wants(LUCENT):
        return result
    async with ctx.server(LUCENT) as server:
        result.commands[LUCENT.name] = server.argv
        rig = FanoutRig(server)
        for subscribers, rate, p99_target in POINTS:
            await rig.grow(subscribers)
            figures = await rig.latency(ctx.seconds(SECONDS), rate)
            result.figures[f"N={subscribers} at {rate:g}/s"] = figures
            name = f"N={subscribers:,} at {rate:g}/s p99"
            result.check(name, figures["p99_ms"], "<=", p99_target, " ms")
            bad = figures["lost"] + figures["duplicated"] + figures["reordered"]
            result.check(f"N={subscribers:,} lost + duplicated + reordered", bad, "<=", 0)
        rig.close()
    return result


SCENARIO = Scenario("latency", __doc__ or "", run)
