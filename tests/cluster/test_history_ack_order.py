"""A connection's history publishes through a broker are answered in the order it sent them,
an outage in the middle included (a fake client driven through the real Session)."""

from __future__ import annotations

import asyncio

from lucent_ws import WebSocketManager
from lucent_ws.broker.backend import Appended, HistoryAppend
from lucent_ws.broker.memory import MemoryBroker, MemoryStore
from lucent_ws.config import Limits
from lucent_ws.envelope import V2
from lucent_ws.policy import RoomPolicy
from lucent_ws.session import Session

from ..fakes import fake_connect
from ..waiting import wait_until

POLICIES = [RoomPolicy("h:*", history_size=100, history_ttl=60)]


async def test_an_unavailable_answer_never_overtakes_an_earlier_publish() -> None:
    store = MemoryStore()
    manager = WebSocketManager(heartbeat=None, close_timeout=1.0, policies=POLICIES)
    broker = MemoryBroker(store)
    await broker.start(manager)
    try:
        await broker.wait_until_up()
        conn, transport = fake_connect(manager, version=V2)
        session = Session(manager, conn, Limits(rate_limit=0))
        await session.on_text('{"type":"join","room":"h:o","ref":0}')
        backend = broker.backend
        real_append = backend.append
        release = asyncio.Event()
        calls = 0

        async def slow_append(request: HistoryAppend) -> Appended:
            nonlocal calls
            calls += 1
            await release.wait()  # Redis slow to answer the first publish
            return await real_append(request)

        backend.append = slow_append  # type: ignore[method-assign]
        await session.on_text('{"type":"broadcast","room":"h:o","payload":1,"ref":1}')
        await wait_until(lambda: calls == 1, what="the first publish is in flight")
        store.fail()  # the broker notices the outage while the first one waits
        await wait_until(lambda: not broker.up, what="the broker is down")
        await session.on_text('{"type":"broadcast","room":"h:o","payload":2,"ref":2}')
        await asyncio.sleep(0.05)  # the second one's answer, if it does not wait, is out
        release.set()

        def answered() -> list[tuple[int, str]]:
            return [
                (m["ref"], m.get("code") or m["type"])
                for m in transport.messages()
                if m.get("type") in ("ack", "error") and m.get("ref") in (1, 2)
            ]

        await wait_until(lambda: len(answered()) == 2, what="both answered")
        print("answers in order of arrival:", answered())
        assert [ref for ref, _ in answered()] == [1, 2]
        assert answered()[1] == (2, "unavailable")
    finally:
        await broker.stop()
