"""``POST /admin/broadcast`` under wrk vs a bare aiohttp handler answering the same JSON."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.proc import CpuWindow
from bench.progress import Progress, say
from bench.quiet import wait_quiet
from bench.results import Result
from bench.rig import ROOM, FanoutRig
from bench.scenario import Scenario
from bench.servers import BARE, HOST, LUCENT, TOKEN, ServerProcess

SUBSCRIBERS = 10
CONNECTIONS = 32
ROUNDS = 3
SECONDS = 5.0

_SCRIPT = """wrk.method = "POST"
wrk.body = '{"room":"%s","payload":{"type":"post:created","doc":{"id":1,"title":"hello"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def _seconds(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match.group(2)]
    return float(match.group(1)) * scale


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and error counts from ``wrk --latency`` output."""
    figures: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", output):
        figures["requests_per_s"] = float(m.group(1))
    for pct in ("50", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.M):
            figures[f"p{pct}_ms"] = _seconds(m.group(1)) * 1e3
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", output)
    figures["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return figures


async def load(ctx: Context, server: ServerProcess, script: Path, seconds: float) -> dict[str, Any]:
    """Run wrk pinned to the client CPU against ``server``."""
    url = f"http://{HOST}:{server.port}/admin/broadcast"
    argv = [
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{round(seconds)}s",
        "--latency",
        "-s",
        str(script),
    ]
    argv.append(url)
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(ctx.client_cpu), *argv]
    await wait_quiet(60.0, exclude_pid=server.pid)
    window = CpuWindow(server.pid)
    async with Progress(f"{server.spec.name}: wrk", lambda: "running"):
        with window:
            wrk = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
            out, _ = await wrk.communicate()
    figures = parse_wrk(out.decode())
    figures["server_cpu_share"] = window.server / seconds
    figures["wrk_command"] = " ".join(argv[3:] if argv[0] == "taskset" else argv)
    return figures


async def run(ctx: Context) -> Result:
    result = Result("admin")
    if not shutil.which("wrk"):
        say("  wrk not found: skipping (apt-get install wrk)")
        result.notes.append("skipped: wrk not installed")
        return result
    script = ctx.out_dir / "admin_broadcast.lua"
    script.write_text(_SCRIPT % (ROOM, TOKEN))
    specs = [spec for spec in (LUCENT, BARE) if ctx.wants(spec)]
    runs: dict[str, list[dict[str, Any]]] = {spec.name: [] for spec in specs}
    async with contextlib.AsyncExitStack() as stack:
        servers = [await stack.enter_async_context(ctx.server(spec)) for spec in specs]
        rigs = [FanoutRig(server) for server in servers]
        for server, rig in zip(servers, rigs, strict=True):
            result.commands[server.spec.name] = server.argv
            if server.spec is LUCENT:
                await rig.grow(SUBSCRIBERS)
            await load(ctx, server, script, 2)  # warm-up
        for round_no in range(ROUNDS):
            # Alternating the order cancels a drift of the machine's speed.
            for server in servers if round_no % 2 == 0 else servers[::-1]:
                figures = await load(ctx, server, script, round(ctx.seconds(SECONDS)))
                runs[server.spec.name].append(figures)
        for rig in rigs:
            rig.close()
    for name, loads in runs.items():
        rates = [figures.get("requests_per_s", 0.0) for figures in loads]
        median = sorted(range(len(loads)), key=rates.__getitem__)[len(loads) // 2]
        result.figures[name] = {**loads[median], "requests_per_s_rounds": rates}
    result.notes.append(
        f"lucent_ws delivers each request's payload to a room of {SUBSCRIBERS} subscribers; "
        'the bare handler parses the body and answers {"delivered": 0}; '
        f"{ROUNDS} rounds of {SECONDS:g} s each, in alternating order; figures of the "
        "median round"
    )
    lucent, bare = runs.get(LUCENT.name), runs.get(BARE.name)
    if lucent and bare:
        ratios = sorted(
            a.get("requests_per_s", 0.0) / b["requests_per_s"]
            for a, b in zip(lucent, bare, strict=True)
            if b.get("requests_per_s")
        )
        if ratios:
            ratio = ratios[len(ratios) // 2]
            result.figures["lucent_over_bare"] = ratio
            result.figures["lucent_over_bare_rounds"] = ratios
            result.check(
                "admin broadcast req/s, lucent_ws / bare aiohttp (median round)",
                ratio, ">=", 0.5, "x",
            )  # fmt: skip
        non_2xx = sum(figures.get("non_2xx", 0) for figures in lucent)
        result.check("lucent_ws non-2xx responses", non_2xx, "<=", 0)
    return result


SCENARIO = Scenario("admin", __doc__ or "", run)
