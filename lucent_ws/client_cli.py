"""``lucent-ws listen`` and ``lucent-ws publish``: a terminal on a hub, via the client.

::

    lucent-ws listen ws://127.0.0.1:8080/ws chat:1 posts   # one JSON line per message
    lucent-ws publish ws://127.0.0.1:8080/ws chat:1 '{"text": "hi"}'

A token comes from ``--token`` or ``LUCENT_WS_TOKEN``. ``listen`` keeps going
across reconnects (state changes go to stderr) until interrupted or stopped for
good by the server (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence

from .client import Client, ClientError, ClientEvent, Room

__all__ = ["COMMANDS", "main"]

COMMANDS = frozenset({"listen", "publish"})
"""The first arguments that select this module instead of the server."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--token", default=os.environ.get("LUCENT_WS_TOKEN"), help="bearer token")
    common.add_argument("--timeout", type=float, default=5.0, help="request timeout (s)")
    parser = argparse.ArgumentParser(prog="lucent-ws", description="Watch or publish to rooms.")
    sub = parser.add_subparsers(dest="command", required=True)
    listen = sub.add_parser(
        "listen", parents=[common], help="print the rooms' messages as JSON lines"
    )
    listen.add_argument("url")
    listen.add_argument("rooms", nargs="+", metavar="ROOM")
    publish = sub.add_parser("publish", parents=[common], help="publish one JSON payload")
    publish.add_argument("url")
    publish.add_argument("room")
    publish.add_argument("payload", help="JSON")
    return parser


def _log_event(event: ClientEvent) -> None:
    fields = {k: v for k in event.__slots__ if (v := getattr(event, k)) is not None}
    print(json.dumps({"event": fields}), file=sys.stderr, flush=True)


async def _pump(room: Room) -> None:
    async for msg in room:
        line = {"room": msg.room, "from": msg.sender, "payload": msg.payload}
        if msg.offset is not None:
            line.update(offset=msg.offset, epoch=msg.epoch)
        print(json.dumps(line), flush=True)


async def listen(url: str, rooms: Sequence[str], token: str | None, timeout: float) -> int:
    """Print every message of ``rooms`` until the client stops; the exit code."""
    get_token = (lambda: token) if token else None
    async with Client(url, get_token=get_token, request_timeout=timeout, on_event=_log_event) as c:
        joined = [await c.join(room) for room in rooms]
        await asyncio.gather(*(_pump(room) for room in joined))
        return 0 if c.close_code in (None, 1000) else 1


async def publish(url: str, room: str, payload: object, token: str | None, timeout: float) -> int:
    """Join ``room``, publish ``payload`` once, print the ack as JSON; the exit code."""
    get_token = (lambda: token) if token else None
    async with Client(url, get_token=get_token, request_timeout=timeout) as client:
        joined = await client.join(room)
        ack = await joined.publish(payload)
        print(json.dumps({"delivered": ack.delivered, "offset": ack.offset, "id": ack.id}))
        return 0


def main(argv: Sequence[str]) -> int:
    """Run ``listen`` or ``publish``; returns the process exit code."""
    ns = _parser().parse_args(argv)
    try:
        if ns.command == "publish":
            try:
                payload = json.loads(ns.payload)
            except ValueError as exc:
                print(f"error: PAYLOAD is not JSON: {exc}", file=sys.stderr)
                return 2
            return asyncio.run(publish(ns.url, ns.room, payload, ns.token, ns.timeout))
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(listen(ns.url, ns.rooms, ns.token, ns.timeout))
        return 0
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
