"""Hostile input: 10,000 bad messages over 10 sockets; one error reply each, nothing breaks.

Nine sockets send 1,000 faults each to a hub whose error budget is raised so
that every fault is answered; the tenth sends 1,000 to a hub with the default
budget and must be answered 101 times, then closed with 1008. Oversize frames
close with 1009 and invalid UTF-8 with 1007. Meanwhile a bystander in another
room receives every broadcast, and nothing is logged with a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest

from lucent_ws import WebSocketManager, create_app, jsoncodec, protocol, replies
from lucent_ws.config import Limits
from lucent_ws.errors import ProtocolError

from .support import RawClient, unlimited_session

SOCKETS = 10
PER_SOCKET = 1000
ROOM = "arena"
MAX = Limits().max_message_size


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


FAULTS: list[str | bytes] = [
    # invalid JSON
    "{",
    "",
    "nope",
    "{'type': 'ping'}",
    '{"type": "ping",}',
    "\x00",
    # not an object
    "[]",
    "1",
    '"join"',
    "null",
    "true",
    # unknown types
    '{"type": "subscribe", "room": "a", "ref": %d}',
    '{"type": "PING", "ref": %d}',
    '{"type": "' + "t" * 50_000 + '", "ref": %d}',
    # wrong field types and missing fields
    '{"type": 5, "ref": %d}',
    '{"room": "a", "ref": %d}',
    '{"type": "join", "room": 5, "ref": %d}',
    '{"type": "join", "room": null, "ref": %d}',
    '{"type": "join", "room": ["a"], "ref": %d}',
    '{"type": "join", "ref": %d}',
    '{"type": "broadcast", "room": "arena", "ref": %d}',
    '{"type": "ping", "ref": 1.5}',
    '{"type": "ping", "ref": true}',
    '{"type": "ping", "ref": "' + "r" * 65 + '"}',
    '{"type": "join", "room": "", "ref": %d}',
    # huge strings (under the size limit)
    '{"type": "join", "room": "' + "x" * 60_000 + '", "ref": %d}',
    '{"type": "broadcast", "room": "' + "y" * 60_000 + '", "payload": 1, "ref": %d}',
    # control characters in room names
    '{"type": "join", "room": "a\\u0000b", "ref": %d}',
    '{"type": "join", "room": "line\\nbreak", "ref": %d}',
    '{"type": "leave", "room": "\\u007f", "ref": %d}',
    '{"type": "join", "room": "\\u009b", "ref": %d}',
    # deep nesting: past the JSON parser, and past what the relay will encode
    '{"type": "broadcast", "room": "arena", "payload": ' + deep(20_000) + ', "ref": %d}',
    '{"type": "broadcast", "room": "arena", "payload": ' + deep(1020) + ', "ref": %d}',
    # not a member
    '{"type": "broadcast", "room": "elsewhere", "payload": 1, "ref": %d}',
    # binary frames
    b"\x00\x01\x02",
    b'{"type": "ping"}',
]


def expected_reply(fault: str | bytes, member_of: set[str]) -> tuple[str, Any]:
    """The error code and ref the server must answer, from the parser and the session's rules."""
    if isinstance(fault, bytes):
        return "unsupported_data", None
    try:
        message = protocol.parse(fault)
    except ProtocolError as exc:
        return exc.code, exc.ref
    assert isinstance(message, protocol.Broadcast), fault
    if message.room not in member_of:
        return "not_member", message.ref
    try:
        replies.encode_message(message.room, "x", message.payload)
    except TypeError:
        return "invalid_message", message.ref
    raise AssertionError(f"not a fault: {fault[:80]!r}")


def instantiate(template: str | bytes, ref: int) -> str | bytes:
    if isinstance(template, str):
        return template.replace("%d", str(ref))
    return template


class Attacker:
    """One socket sending faults while a task reads the replies, as a real client would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, strict: bool) -> None:
        self.ws = ws
        self.strict = strict
        self.expected: Counter[str] = Counter()
        self.refs: list[Any] = []
        self.sent = 0
        self.codes: Counter[str] = Counter()
        self.got_refs: list[Any] = []
        self.close_code: int | None = None
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        """Error codes and refs received until the end marker, or the close code."""
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("ref") == "end":
                return
            assert data["type"] == "error", data
            self.codes[data["code"]] += 1
            if "ref" in data:
                self.got_refs.append(data["ref"])
        self.close_code = self.ws.close_code

    async def attack(self, rng: random.Random) -> None:
        for i in range(PER_SOCKET):
            fault = instantiate(rng.choice(FAULTS), i)
            code, ref = expected_reply(fault, {ROOM})
            try:
                if isinstance(fault, bytes):
                    await self.ws.send_bytes(fault)
                else:
                    await self.ws.send_str(fault)
            except ConnectionError:
                assert self.strict  # closed by the abuse budget
                return
            self.sent += 1
            self.expected[code] += 1
            if ref is not None:
                self.refs.append(ref)
        await self.ws.send_json({"type": "ping", "ref": "end"})


async def open_attacker(session: aiohttp.ClientSession, url: str, strict: bool) -> Attacker:
    ws = await session.ws_connect(url, max_msg_size=0)
    await ws.receive_json(timeout=5)
    await ws.send_json({"type": "join", "room": ROOM})
    assert await ws.receive_json(timeout=5) == {"type": "joined", "room": ROOM}
    return Attacker(ws, strict)


async def test_hostile_input_gets_one_error_reply_each_and_harms_nobody(
    aiohttp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rng = random.Random(1)
    manager = WebSocketManager(heartbeat=None)
    generous = Limits(rate_limit=0, error_budget=PER_SOCKET * 2)
    hub = await aiohttp_server(
        create_app(manager=manager, heartbeat=False, admin=False, limits=generous)
    )
    strict_manager = WebSocketManager(heartbeat=None)
    strict = await aiohttp_server(create_app(manager=strict_manager, heartbeat=False, admin=False))
    url = f"ws://127.0.0.1:{hub.port}/ws"
    async with unlimited_session() as session:
        bystander = await session.ws_connect(url)
        await bystander.receive_json(timeout=5)
        await bystander.send_json({"type": "join", "room": "quiet"})
        assert await bystander.receive_json(timeout=5) == {"type": "joined", "room": "quiet"}

        attackers = [await open_attacker(session, url, False) for _ in range(SOCKETS - 1)]
        attackers.append(await open_attacker(session, f"ws://127.0.0.1:{strict.port}/ws", True))
        for i, done in enumerate(asyncio.as_completed([a.attack(rng) for a in attackers])):
            await done
            manager.broadcast_to_room("quiet", {"n": i})  # the bystander's traffic
        manager.broadcast_to_room("quiet", {"n": "end"})
        async with asyncio.timeout(30):
            await asyncio.gather(*(a.reader for a in attackers))

        abusive = attackers[-1]
        assert abusive.close_code == 1008  # the abuse budget: 100 errors in 10 s
        assert sum(abusive.codes.values()) == Limits().error_budget + 1
        assert abusive.codes <= abusive.expected
        assert strict_manager.get_stats()["evictions"]["abuse"] == 1
        sent = abusive.sent
        for a in attackers[:-1]:
            assert a.close_code is None
            assert a.sent == PER_SOCKET
            assert a.codes == a.expected  # exactly one reply per fault, with the right code
            assert sorted(a.got_refs) == sorted(a.refs)  # each ref answered once
            sent += a.sent
        for a in attackers:
            await a.ws.close()

        got = [await bystander.receive_json(timeout=5) for _ in range(SOCKETS + 1)]
        assert got == [{"n": i} for i in range(SOCKETS)] + [{"n": "end"}]
        await bystander.close()

        # Frame-level faults close the connection with the right code.
        ws = await session.ws_connect(url, max_msg_size=0)
        await ws.receive_json(timeout=5)
        await ws.send_str("a" * MAX)  # exactly the limit: accepted (and invalid JSON)
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_json"
        await ws.send_str("a" * (MAX + 1))
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert msg.data == 1009
        await ws.close()

        raw = await RawClient.connect(hub.port)
        await raw.read_frame()
        raw.send_frame(0x1, b'{"type": "join", "room": "\xff\xfe"}')
        assert await raw.close_code() == 1007
        raw.abort()

        raw = await RawClient.connect(hub.port)
        await raw.read_frame()
        raw.send_frame(0x1, b"x" * (MAX + 1))
        assert await raw.close_code() == 1009
        raw.abort()

    assert manager.get_stats()["connections"] == 0 or await _drained(manager)
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert "Traceback" not in caplog.text
    print(f"\nFIGURE hostile input: {sent} faults over {SOCKETS} sockets, no traceback")


async def _drained(manager: WebSocketManager) -> bool:
    async with asyncio.timeout(5):
        while manager.get_stats()["connections"]:
            await asyncio.sleep(0.01)
    return True


def test_fault_catalogue_covers_every_error_code() -> None:
    codes = {expected_reply(instantiate(f, 1), {ROOM})[0] for f in FAULTS}
    assert codes == {"invalid_json", "invalid_message", "unknown_type", "not_member"} | {
        "unsupported_data"
    }
    assert all(len(f) <= MAX for f in FAULTS)
    assert jsoncodec.dumps(1)
