"""Reconnect storm: 5,000 v2 clients in 50 history rooms; the hub drains, a fresh one takes over.

Two hub processes share one port (``--reuse-port``) and one Redis (``--redis-url``):
the fresh one starts, the old one gets SIGTERM, stops listening, tells every client
``{"type":"reconnect","within":S}`` and closes them with 1001. The clients
(:mod:`bench.storm`, the official clients' rules on raw sockets) come back spread over
``S`` seconds, re-join with ``since`` and recover what a publisher sent meanwhile.
Then a bare aiohttp server takes as many handshakes at the same pace, for the CPU a
bare handshake costs on this machine in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

from bench import proc
from bench.context import Context
from bench.progress import Progress, say
from bench.results import Result
from bench.scenario import Scenario
from bench.scenarios.cluster import redis_server
from bench.servers import BARE, HOST, LUCENT, ServerProcess
from bench.storm import StormClient, Tally, buckets, listen_overflows
from bench.wsclient import HandshakeError, WsConn, connect

CLIENTS = 5000
ROOMS = 50
WITHIN = 5.0
BUCKET = 0.25
BEFORE = 2  # messages per room before the storm (every client has a position)
MEANWHILE = 4  # messages per room published on the fresh hub while clients are away
CONFIG = '[[rooms]]\npattern = "h:*"\nhistory_size = 1000\nhistory_ttl = 600\n'


async def _listening(server: ServerProcess, timeout: float = 30.0) -> None:
    """Wait for the server's own startup line (the port may already accept: the old hub)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "listening on" in server.log_tail(50):
            return
        assert server.popen is not None
        if server.popen.poll() is not None:
            raise RuntimeError(f"the hub exited at start:\n{server.log_tail()}")
        await asyncio.sleep(0.05)
    raise RuntimeError("the fresh hub did not start")


@contextlib.asynccontextmanager
async def _hub(ctx: Context, port: int | None, flags: list[str]) -> AsyncIterator[ServerProcess]:
    server = ctx.server(LUCENT, flags)
    if port is not None:
        server.port = port
    server.popen = server._spawn()
    try:
        await _listening(server)
        yield server
    finally:
        await asyncio.get_running_loop().run_in_executor(None, server.stop)


async def _publish(port: int, rooms: list[str], count: int) -> WsConn:
    """A publisher member of every room sends ``count`` messages to each; returns it."""
    pub, _ = await connect(HOST, port, "/ws?v=2")
    for room in rooms:
        await pub.join(room)
    for n in range(count):
        for ref, room in enumerate(rooms):
            pub.send_json({"type": "broadcast", "room": room, "payload": n, "ref": ref})
            await pub.expect("ack")
    return pub


async def _bare_handshakes(ctx: Context, count: int, within: float) -> dict[str, Any]:
    """``count`` handshakes (upgrade and greeting) spread over ``within`` s to bare aiohttp."""
    async with ctx.server(BARE) as bare:
        rng = random.Random(2)
        conns: list[WsConn] = []
        failed = 0

        async def one(delay: float) -> None:
            nonlocal failed
            await asyncio.sleep(delay)
            try:
                conn, _ = await connect(HOST, bare.port)
            except (HandshakeError, OSError, TimeoutError):
                failed += 1
                return
            conns.append(conn)

        cpu0, t0 = bare.cpu_seconds(), time.monotonic()
        await asyncio.gather(*(one(rng.uniform(0, within)) for _ in range(count)))
        cpu = bare.cpu_seconds() - cpu0
        seconds = time.monotonic() - t0
        for conn in conns:
            conn.abort()
    return {
        "handshakes": len(conns),
        "failed": failed,
        "seconds": seconds,
        "server_cpu_s": cpu,
        "server_us_per_handshake": cpu / max(1, len(conns)) * 1e6,
    }


async def run(ctx: Context) -> Result:
    result = Result("storm")
    clients = 1000 if ctx.quick else CLIENTS
    rooms = [f"h:storm:{i}" for i in range(ROOMS)]
    config = ctx.out_dir / "storm.toml"
    config.write_text(CONFIG)
    flags = ["--config", str(config), "--reuse-port", "--reconnect-within", str(WITHIN)]
    use_redis = shutil.which("redis-server") is not None
    if not use_redis:
        result.notes.append("no redis-server: two single-node hubs, no shared history")
    async with contextlib.AsyncExitStack() as stack:
        redis_pid = 0
        if use_redis:
            url, redis_pid = await stack.enter_async_context(redis_server(ctx.server_cpu))
            flags += ["--redis-url", url]
        old = await stack.enter_async_context(_hub(ctx, None, flags))
        result.commands["lucent_ws"] = old.argv
        tally = Tally()
        rng = random.Random(1)
        storm = [StormClient(HOST, old.port, rooms[i % ROOMS], tally, rng) for i in range(clients)]
        gate = asyncio.Semaphore(50)
        tasks = [asyncio.create_task(c.run(gate)) for c in storm]
        stack.callback(lambda: [t.cancel() for t in tasks])
        joined = lambda: sum(c.joined.is_set() for c in storm)  # noqa: E731
        async with Progress("clients joined", lambda: f"{joined():,}/{clients:,}"):
            await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in storm)), 300)
        (await _publish(old.port, rooms, BEFORE)).abort()
        await _until(lambda: all(c.received >= BEFORE for c in storm), 60)
        fresh = await stack.enter_async_context(_hub(ctx, old.port, flags))
        result.commands["fresh"] = fresh.argv
        netstat0, cpu0 = listen_overflows(), fresh.cpu_seconds()
        redis0 = proc.cpu_seconds(redis_pid) if redis_pid else 0.0
        tally.since = t0 = time.monotonic()
        assert old.popen is not None
        old.popen.terminate()
        await asyncio.sleep(0.2)  # the old hub stopped listening: the publisher meets the fresh
        publisher = await _publish(fresh.port, rooms, MEANWHILE)
        back = lambda: sum(c.rejoined_at is not None for c in storm)  # noqa: E731
        async with Progress("clients back", lambda: f"{back():,}/{clients:,}"):
            await _until(lambda: back() == clients, WITHIN + 30)
            total = BEFORE + MEANWHILE
            await _until(lambda: all((c.offset or 0) >= total for c in storm), 15)
        all_back = max((c.rejoined_at or float("inf")) for c in storm) - t0
        cpu = fresh.cpu_seconds() - cpu0
        redis_cpu = (proc.cpu_seconds(redis_pid) - redis0) if redis_pid else 0.0
        netstat1 = listen_overflows()
        publisher.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in storm:
            if c.conn is not None:
                c.conn.abort()
        old_exit = await asyncio.get_running_loop().run_in_executor(None, old.popen.wait, 30)
    first_close = min((c.closed_at for c in storm if c.closed_at), default=t0)
    counts = buckets(tally.handshakes, first_close, BUCKET)
    share = clients * BUCKET / WITHIN
    bad = {k: sum(getattr(c, k) for c in storm) for k in ("lost", "duplicated", "reordered")}
    overflows = {k: netstat1[k] - netstat0[k] for k in netstat0}
    bare = await _bare_handshakes(ctx, clients, WITHIN)
    reconnects = len(tally.handshakes)
    result.figures = {
        "clients": clients,
        "rooms": ROOMS,
        "within_s": WITHIN,
        "old_hub_exit_code": old_exit,
        "redis": use_redis,
        "all_back_s": all_back,
        "handshakes": reconnects,
        "refused_statuses": dict(tally.statuses),
        "refused_connections": tally.refused,
        "outcomes": dict(tally.outcomes),
        "missed_replayed": tally.missed,
        "joins_unavailable": tally.unavailable,
        "messages_per_client": BEFORE + MEANWHILE,
        **bad,
        "buckets_250ms": counts,
        "uniform_share": share,
        "max_bucket_over_share": max(counts, default=0) / share,
        "listen": overflows,
        "server_cpu_s": cpu,
        "redis_cpu_s": redis_cpu,
        "server_us_per_reconnect": cpu / max(1, reconnects) * 1e6,
        "bare": bare,
    }
    result.figures["reconnect_over_bare_handshake"] = (
        result.figures["server_us_per_reconnect"] / bare["server_us_per_handshake"]
    )
    say(f"   outcomes {dict(tally.outcomes)}; buckets {counts}")
    result.check("all back, re-joined, within + 5 s", all_back, "<=", WITHIN + 5, " s")
    result.check("re-joins recovered", tally.outcomes["recovered"], ">=", clients)
    result.check("503 answers", tally.statuses[503], "<=", 0)
    result.check("busiest 250 ms bucket / uniform share", max(counts, default=0) / share, "<=", 2)
    result.check("listen queue overflows", overflows["ListenOverflows"], "<=", 0)
    result.check("lost + duplicated + reordered", sum(bad.values()), "<=", 0)
    return result


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 (polled state)
        await asyncio.sleep(0.05)


SCENARIO = Scenario("storm", __doc__ or "", run)
