"""2 nodes sharing one Redis: deliveries/s in a history room vs a plain room, alternated."""

from __future__ import annotations

import shutil
import statistics

from bench.context import Context
from bench.results import Result
from bench.rig import ROOM
from bench.scenario import Scenario
from bench.scenarios.cluster import SUBSCRIBERS, measure, redis_server
from bench.servers import LUCENT

HISTORY_ROOM = "h:bench"
ROUNDS = 2  # plain, history, plain, history: the machine's noise falls on both alike
CONFIG = """\
[[rooms]]
pattern = "h:*"
history_size = 1000
history_ttl = 600
"""


async def run(ctx: Context) -> Result:
    result = Result("cluster_history")
    if not ctx.wants(LUCENT):
        return result
    if shutil.which("redis-server") is None:
        result.notes.append("redis-server not found: scenario not run")
        return result
    config = ctx.out_dir / "cluster_history.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    seconds = ctx.seconds(8)
    samples: dict[str, list[dict[str, float]]] = {"plain": [], "history": []}
    async with redis_server(ctx.server_cpu) as (url, redis_pid):
        flags = ["--redis-url", url, "--config", str(config)]
        async with ctx.server(LUCENT, flags) as a, ctx.server(LUCENT, flags) as b:
            result.commands["node_a"] = a.argv
            result.commands["node_b"] = b.argv
            for n in range(ROUNDS):
                for label, room in (("plain", ROOM), ("history", HISTORY_ROOM)):
                    figures = await measure(
                        f"{label} {n + 1}", [a, b], [a.pid, b.pid, redis_pid], seconds, room
                    )
                    samples[label].append(figures)
                    bad = figures["lost"] + figures["duplicated"] + figures["reordered"]
                    result.check(f"{label} lost + duplicated + reordered", bad, "<=", 0)
    for label, rounds in samples.items():
        result.figures[label] = {
            "deliveries_per_s": statistics.median(r["deliveries_per_s"] for r in rounds),
            "server_us_per_delivery": statistics.median(
                r["server_us_per_delivery"] for r in rounds
            ),
            "server_us_per_delivery_node_a_node_b_redis": [
                statistics.median(r["server_us_per_delivery_by_process"][i] for r in rounds)
                for i in range(3)
            ],
            "deliveries_per_write_node_a_node_b": [
                statistics.median(r["deliveries_per_write_by_node"][i] for r in rounds)
                for i in range(2)
            ],
            "broadcasts_per_s": statistics.median(
                r["deliveries_per_s"] / r["subscribers"] for r in rounds
            ),
            "rounds": rounds,
        }
    plain, history = result.figures["plain"], result.figures["history"]
    ratio = history["deliveries_per_s"] / plain["deliveries_per_s"]
    result.figures["history_over_plain"] = ratio
    result.figures["subscribers"] = SUBSCRIBERS
    result.notes.append(
        "both nodes and Redis share the server CPU; a history broadcast is one append script "
        "in Redis (offset, Stream entry, publish) before any node delivers it"
    )
    result.check("history / plain deliveries per second (medians)", ratio, ">=", 0.5, "x")
    return result


SCENARIO = Scenario("cluster_history", __doc__ or "", run)
