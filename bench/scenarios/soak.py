"""Soak: the official Python client reconnecting every 5 s for 10 minutes leaves nothing behind.

The client (``lucent_ws.client.Client``, on a stdlib asyncio loop in a thread of its
own so its tasks and timers can be counted) reaches the hub through a proxy
(:mod:`bench.cutproxy`) that resets its connection after 5 s up, about 120 times. Each
cycle a publisher (direct to the hub) sends one message while the client is connected
and one while it is away; the client re-joins its history room with ``since`` and must
get both, once, in order. Its loop's tasks and live timers, the process's open
descriptors and RSS are taken after every re-join.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from bench import proc
from bench.context import Context
from bench.cutproxy import CutProxy
from bench.progress import Progress
from bench.results import Result
from bench.scenario import Scenario
from bench.servers import HOST, LUCENT

UP = 5.0  # seconds a connection lives before the proxy cuts it
ROOM = "h:soak"
CONFIG = '[[rooms]]\npattern = "h:*"\nhistory_size = 1000\nhistory_ttl = 600\n'


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _timers(loop: asyncio.AbstractEventLoop) -> int:
    return sum(1 for handle in getattr(loop, "_scheduled", ()) if not handle.cancelled())


class Soak:
    """The client side, run by :meth:`thread` on its own loop."""

    def __init__(self, proxied: str, direct: str, seconds: float, cut: Any) -> None:
        self.proxied, self.direct, self.seconds, self.cut = proxied, direct, seconds, cut
        self.samples: list[dict[str, float]] = []
        self.outcomes: list[tuple[bool | None, int | None]] = []
        self.payloads: list[Any] = []
        self.published = 0
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self.error: str | None = None

    def thread(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported as a figure, the run goes on
            self.error = repr(exc)

    def _sample(self) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        return {
            "tasks": len(asyncio.all_tasks(loop)),
            "timers": _timers(loop),
            "fds": _fds(),
            "rss_mb": proc.rss_bytes(os.getpid()) / 2**20,
        }

    async def _main(self) -> None:
        from lucent_ws.client import Backoff, Client, ClientEvent

        recovered: asyncio.Queue[ClientEvent] = asyncio.Queue()
        dropped = asyncio.Event()

        def on_event(event: ClientEvent) -> None:
            if event.kind == "recovered":
                recovered.put_nowait(event)
            elif event.kind == "disconnected":
                dropped.set()

        self.before = self._sample()
        # The attempt counter resets after 4 s up, so every cycle starts from the first window.
        backoff = Backoff(base=0.05, cap=1.0, reset_after=UP - 1)
        async with (
            Client(self.direct) as publisher,
            Client(self.proxied, backoff=backoff, on_event=on_event) as client,
        ):
            pub_room = await publisher.join(ROOM)
            room = await client.join(ROOM)
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                up_since = time.monotonic()
                await self._publish_and_receive(pub_room.publish, room)
                self.samples.append(self._sample())
                await asyncio.sleep(max(0.0, UP - (time.monotonic() - up_since)))
                dropped.clear()
                self.cut()
                await asyncio.wait_for(dropped.wait(), 10)
                await pub_room.publish(self.published, timeout=5)  # while the client is away
                self.published += 1
                event = await asyncio.wait_for(recovered.get(), 30)
                self.outcomes.append((event.recovered, event.missed))
            await self._drain(room, 2.0)
        await asyncio.sleep(0.1)
        self.after = self._sample()

    async def _publish_and_receive(self, publish: Any, room: Any) -> None:
        await publish(self.published, timeout=5)
        self.published += 1
        await self._drain(room, 10.0, until=self.published)

    async def _drain(self, room: Any, timeout: float, until: int | None = None) -> None:
        while until is None or len(self.payloads) < until:
            try:
                message = await asyncio.wait_for(room.__anext__(), timeout)
            except (TimeoutError, StopAsyncIteration):
                return
            self.payloads.append(message.payload)


async def run(ctx: Context) -> Result:
    result = Result("soak")
    seconds = ctx.seconds(600)
    config = ctx.out_dir / "soak.toml"
    config.write_text(CONFIG)
    async with ctx.server(LUCENT, ["--config", str(config)]) as server:
        result.commands["lucent_ws"] = server.argv
        proxy = CutProxy(server.port)
        await proxy.start()
        loop = asyncio.get_running_loop()
        soak = Soak(
            f"ws://{HOST}:{proxy.port}/ws",
            f"ws://{HOST}:{server.port}/ws",
            seconds,
            lambda: loop.call_soon_threadsafe(proxy.cut),
        )
        worker = threading.Thread(target=soak.thread, name="soak-client")
        async with Progress("soak", lambda: f"{len(soak.outcomes)} reconnects"):
            worker.start()
            await loop.run_in_executor(None, worker.join)
        await proxy.close()
    first, last = (soak.samples[0], soak.samples[-1]) if soak.samples else ({}, {})
    in_order = soak.payloads == list(range(soak.published))
    recovered = sum(1 for r, _ in soak.outcomes if r)
    result.figures = {
        "seconds": seconds,
        "cycles": len(soak.outcomes),
        "cuts": proxy.cuts,
        "recovered": recovered,
        "missed_replayed": sum(m or 0 for _, m in soak.outcomes),
        "published": soak.published,
        "received": len(soak.payloads),
        "in_order_once": in_order,
        "before": soak.before,
        "first_cycle": first,
        "last_cycle": last,
        "max": {k: max(s[k] for s in soak.samples) for k in first},
        "after_close": soak.after,
        "error": soak.error,
    }
    result.check("reconnect cycles", len(soak.outcomes), ">=", 0.9 * seconds / (UP + 0.5))
    result.check("cuts not followed by a recovered re-join", proxy.cuts - recovered, "<=", 0)
    result.check("messages missing, doubled or out of order", 0 if in_order else 1, "<=", 0)
    if first:
        for key in ("tasks", "timers", "fds"):
            result.check(f"{key}: last cycle - first", last[key] - first[key], "<=", 0)
            result.check(
                f"{key}: after close - before", soak.after[key] - soak.before[key], "<=", 0
            )
    return result


SCENARIO = Scenario("soak", __doc__ or "", run)
