"""2 nodes sharing one Redis, 1,000 subscribers split between them: deliveries/s vs 1 node."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bench import proc
from bench.context import Context
from bench.deliveries import SeqTracker, Tally, broadcast_frame_body
from bench.frames import client_frame
from bench.progress import Progress
from bench.results import Result
from bench.rig import READ_BATCH, ROOM
from bench.scenario import Scenario
from bench.servers import HOST, LUCENT, ServerProcess, free_port
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
    label: str, nodes: Sequence[ServerProcess], pids: Sequence[int], seconds: float
) -> dict[str, Any]:
    """Split subscribers over ``nodes``; publish from the first; count deliveries.

    ``pids``: every server-side process whose CPU time counts (nodes and Redis).
    """
    subs: list[WsConn] = []
    share = SUBSCRIBERS // len(nodes)
    async with Progress(f"{label}: subscribers", lambda: f"{len(subs):,}/{SUBSCRIBERS:,}"):
        for i, node in enumerate(nodes):
            count = SUBSCRIBERS - share * (len(nodes) - 1) if i == 0 else share
            await connect_many(HOST, node.port, count, room=ROOM, into=subs)
    pub, _ = await connect(HOST, nodes[0].port)
    await pub.join(ROOM)
    for conn in (*subs, pub):
        conn.drain()

    tally = Tally()
    trackers = [SeqTracker(0, tally) for _ in subs]
    for sub, tracker in zip(subs, trackers, strict=True):
        sub.count(tracker)
        sub.read_batch(READ_BATCH)
    seq = 0
    n = len(subs)

    async def publish_until(deadline: float) -> None:
        nonlocal seq
        while time.monotonic() < deadline:
            need = (seq - INFLIGHT + 1) * n
            if tally.delivered < need:
                await asyncio.wait_for(tally.wait_for(need), 10.0)
            pub.send_raw(client_frame(broadcast_frame_body(ROOM, seq, seq)))
            seq += 1

    def cpu() -> float:
        return sum(proc.cpu_seconds(pid) for pid in pids)

    async with Progress(f"{label}: throughput", lambda: f"{tally.delivered:,} deliveries"):
        await publish_until(time.monotonic() + 1.0)
        d0, t0, c0 = tally.delivered, time.monotonic(), cpu()
        await publish_until(time.monotonic() + seconds)
        d1, t1, c1 = tally.delivered, time.monotonic(), cpu()
        for sub in subs:
            sub.read_batch(1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tally.wait_for(seq * n), 10.0)
    for conn in (*subs, pub):
        conn.abort()
    measured = d1 - d0
    return {
        "nodes": len(nodes),
        "subscribers": n,
        "inflight": INFLIGHT,
        "broadcasts": seq,
        "deliveries_per_s": measured / (t1 - t0),
        "server_us_per_delivery": (c1 - c0) / measured * 1e6,
        "server_cpu_share": (c1 - c0) / (t1 - t0),
        "lost": sum(t.lost(seq) for t in trackers),
        "duplicated": sum(t.duplicated for t in trackers),
        "reordered": sum(t.reordered for t in trackers),
    }


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
