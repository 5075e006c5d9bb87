"""1 publisher -> 1,000 subscribers in a history room vs a plain room, one server, one run."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.context import Context
from bench.results import Result
from bench.rig import FanoutRig
from bench.scenario import Scenario
from bench.servers import HOST, TOKEN, ServerSpec

SUBSCRIBERS = 1000
INFLIGHT = 8
WARMUP = 3.0
ROOMS = {"plain": "bench", "history": "h:bench"}


def _command(port: int, extra: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "bench.history_server", "--host", HOST, "--port", str(port),
        "--max-connections", "20000", "--rate-limit", "0", "--admin-token", TOKEN,
        "--log-level", "warning", "--no-heartbeat", *extra,
    ]  # fmt: skip


HISTORY_HUB = ServerSpec(
    "lucent_ws", _command, "python -m bench.history_server (run.py with rooms h:* keeping 1,000)"
)


async def run(ctx: Context) -> Result:
    result = Result("history")
    async with ctx.server(HISTORY_HUB) as server:
        result.commands[HISTORY_HUB.name] = server.argv
        for label, room in ROOMS.items():
            rig = FanoutRig(server, room=room)
            await rig.grow(SUBSCRIBERS)
            result.figures[label] = await rig.throughput(ctx.seconds(8), INFLIGHT, warmup=WARMUP)
            rig.close()
    plain, history = result.figures.get("plain"), result.figures.get("history")
    if plain and history:
        ratio = history["server_us_per_delivery"] / plain["server_us_per_delivery"]
        result.figures["history_over_plain"] = ratio
        result.check("history / plain CPU per delivery", ratio, "<=", 1.3, "x")
        for figures in (plain, history):
            bad = figures["lost"] + figures["duplicated"] + figures["reordered"]
            result.check("lost + duplicated + reordered", bad, "<=", 0)
    return result


SCENARIO = Scenario("history", __doc__ or "", run)
