"""2 nodes sharing one Redis, 1,000 subscribers split between them: deliveries/s vs 1 node."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from bench import proc
from bench.context import Context
from bench.deliveries import broadcast_frame_body
from bench.frames import client_frame
from bench.progress import Progress
from bench.results import Result
from bench.rig import ROOM
from bench.scenario import Scenario
from bench.servers import HOST, LUCENT, ServerProcess, free_port
from bench.throughput import run_phase
from bench.wsclient import WsConn, connect, connect_many

SUBSCRIBERS = 1000
INFLIGHT = 32  # enough broadcasts in flight that the extra Redis hop's latency is hidden


@contextlib.asynccontextmanager
async def redis_server(cpu: int) -> AsyncIterator[tuple[str, int]]:
    """A throwaway ``redis-server`` pinned like the hub; yields its URL and pid."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu), *argv]
    popen = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                if time.monotonic() > deadline or popen.returncode is not None:
                    raise RuntimeError("redis-server did not start") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        yield f"redis://{HOST}:{port}/0", popen.pid
    finally:
        popen.kill()
        await popen.wait()


async def measure(
    label: str,
    nodes: Sequence[ServerProcess],
    pids: Sequence[int],
    seconds: float,
    room: str = ROOM,
) -> dict[str, Any]:
    """Split subscribers of ``room`` over ``nodes``; publish from the first; count deliveries.

    ``pids``: every server-side process whose CPU time counts (nodes and Redis); the
    figures give their sum and each one's share, in the order given.
    """
    subs: list[WsConn] = []
    share = SUBSCRIBERS // len(nodes)
    async with Progress(f"{label}: subscribers", lambda: f"{len(subs):,}/{SUBSCRIBERS:,}"):
        per_node = []
        for i, node in enumerate(nodes):
            count = SUBSCRIBERS - share * (len(nodes) - 1) if i == 0 else share
            per_node.append(count)
            await connect_many(HOST, node.port, count, room=room, into=subs)
    pub, _ = await connect(HOST, nodes[0].port)
    await pub.join(room)
    for conn in (*subs, pub):
        conn.drain()

    def cpu() -> list[float]:
        return [proc.cpu_seconds(pid) for pid in pids]

    def send(seq: int) -> None:
        pub.send_raw(client_frame(broadcast_frame_body(room, seq, seq)))

    window = _CpuSum(cpu)
    writes = [proc.write_calls(pid) for pid in pids]
    phase = await run_phase(
        subs, send, 0, inflight=INFLIGHT, warmup=1.0, seconds=seconds, window=window,
        label=f"{label}: throughput",
    )  # fmt: skip
    # over the whole phase (warm-up and drain included), to set against all its deliveries
    writes = [proc.write_calls(pid) - before for pid, before in zip(pids, writes, strict=True)]
    for conn in (*subs, pub):
        conn.abort()
    return {
        "nodes": len(nodes),
        "subscribers": len(subs),
        "inflight": INFLIGHT,
        "broadcasts": phase.broadcasts,
        "deliveries_per_s": phase.per_second,
        "server_us_per_delivery": window.seconds / phase.deliveries * 1e6,
        "server_us_per_delivery_by_process": [
            each / phase.deliveries * 1e6 for each in window.each
        ],
        "server_cpu_share": window.seconds / phase.seconds,
        "deliveries_per_write_by_node": [
            phase.broadcasts * members / count if count else 0.0
            for members, count in zip(per_node, writes, strict=False)
        ],
        **phase.integrity,
    }


class _CpuSum:
    """CPU seconds each process of ``cpu()`` advanced by while the context was entered,
    and their sum."""

    def __init__(self, cpu: Callable[[], list[float]]) -> None:
        self.cpu = cpu
        self.each: list[float] = []

    @property
    def seconds(self) -> float:
        return sum(self.each)

    def watch(self, pid: int) -> None:
        """The load client's CPU is not counted here."""

    def __enter__(self) -> None:
        self.each = [-value for value in self.cpu()]

    def __exit__(self, *exc: object) -> None:
        self.each = [start + end for start, end in zip(self.each, self.cpu(), strict=True)]


async def run(ctx: Context) -> Result:
    result = Result("cluster")
    if not ctx.wants(LUCENT):
        return result
    if shutil.which("redis-server") is None:
        result.notes.append("redis-server not found: cross-node scenario not run")
        return result
    seconds = ctx.seconds(8)
    async with ctx.server(LUCENT) as single:
        result.commands["single"] = single.argv
        result.figures["single"] = await measure("1 node", [single], [single.pid], seconds)
    async with redis_server(ctx.server_cpu) as (url, redis_pid):
        flags = ["--redis-url", url]
        async with ctx.server(LUCENT, flags) as a, ctx.server(LUCENT, flags) as b:
            result.commands["node_a"] = a.argv
            result.commands["node_b"] = b.argv
            result.figures["two_nodes"] = await measure(
                "2 nodes", [a, b], [a.pid, b.pid, redis_pid], seconds
            )
    one, two = result.figures["single"], result.figures["two_nodes"]
    ratio = two["deliveries_per_s"] / one["deliveries_per_s"]
    result.figures["two_over_single"] = ratio
    result.figures["cpu_per_delivery_two_over_single"] = (
        two["server_us_per_delivery"] / one["server_us_per_delivery"]
    )
    result.notes.append(
        "both nodes and Redis share the server CPU: the ratio is the cluster path's cost "
        "at equal CPU, not added capacity"
    )
    result.check("2 nodes / 1 node deliveries per second", ratio, ">=", 0.7)
    bad = two["lost"] + two["duplicated"] + two["reordered"]
    result.check("2 nodes lost + duplicated + reordered", bad, "<=", 0)
    return result


SCENARIO = Scenario("cluster", __doc__ or "", run)
