"""Churn: connect, join, leave, close, by 32 concurrent clients; cycles per second."""

from __future__ import annotations

import asyncio
import time

from bench.context import Context
from bench.proc import CpuWindow
from bench.progress import Progress
from bench.quiet import wait_quiet
from bench.results import Result
from bench.scenario import Scenario
from bench.servers import HOST, LUCENT, NAIVE, ServerProcess
from bench.wsclient import connect

WORKERS = 32


async def churn(server: ServerProcess, seconds: float) -> dict[str, float]:
    """Run cycles from ``WORKERS`` clients for ``seconds``; return the rates."""
    cycles = errors = unclean = 0
    await wait_quiet(30.0, exclude_pid=server.pid)
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal cycles, errors, unclean
        room = f"churn-{n % 8}"
        while time.monotonic() < deadline:
            try:
                conn, _ = await connect(HOST, server.port)
                await conn.join(room)
                conn.send_json({"type": "leave", "room": room})
                await conn.expect("left")
                if await conn.close() != 1000:
                    unclean += 1
                cycles += 1
            except (OSError, RuntimeError, TimeoutError):
                errors += 1

    window = CpuWindow(server.pid)
    label = f"{server.spec.name}: churn"
    async with Progress(label, lambda: f"{cycles:,} cycles, {errors} errors"):
        start = time.monotonic()
        with window:
            await asyncio.gather(*(worker(n) for n in range(WORKERS)))
        elapsed = time.monotonic() - start
    return {
        "cycles": cycles,
        "cycles_per_s": cycles / elapsed,
        "errors": errors,
        "close_not_1000": unclean,
        "server_us_per_cycle": window.server / max(cycles, 1) * 1e6,
        "client_us_per_cycle": window.client / max(cycles, 1) * 1e6,
        "server_cpu_share": window.server / elapsed,
        "other_cpu_share": window.other / elapsed,
    }


async def run(ctx: Context) -> Result:
    result = Result("churn")
    for spec in (LUCENT, NAIVE):
        if not ctx.wants(spec):
            continue
        async with ctx.server(spec) as server:
            result.commands[spec.name] = server.argv
            await churn(server, 1.0)  # warm-up
            result.figures[spec.name] = await churn(server, ctx.seconds(10))
    lucent = result.figures.get(LUCENT.name)
    if lucent:
        result.check("lucent_ws churn", lucent["cycles_per_s"], ">=", 1500, " cycles/s")
        result.check("lucent_ws churn errors", lucent["errors"], "<=", 0)
    return result


SCENARIO = Scenario("churn", __doc__ or "", run)
