"""Runs one shared case against the Python client and observes it as the JS runner does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lucent_ws.client import Backoff, Client, ClientError, ClientEvent, RequestFailed, Room

EVENT_FIELDS = {
    "connected": (),
    "disconnected": ("code",),
    "closed": ("code",),
    "recovered": ("room", "recovered", "missed", "reason"),
    "left": ("room", "reason"),
}


def normalise_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The part of an event the cases compare (``connecting`` carries random delays)."""
    fields = EVENT_FIELDS.get(event["kind"])
    if fields is None:
        return None
    return {"kind": event["kind"], **{f: event.get(f) for f in fields}}


def error_name(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"error": type(exc).__name__}
    if isinstance(exc, RequestFailed):
        out["code"] = exc.code
    return out


async def run_python_case(case: dict[str, Any], url: str) -> dict[str, Any]:
    settings = case.get("client", {})
    tokens = list(settings.get("tokens", []))
    get_token = (lambda: tokens.pop(0) if tokens else None) if "tokens" in settings else None
    backoff = settings.get("backoff", {"base": 0.02, "cap": 0.05})
    events: list[dict[str, Any]] = []
    recording = True

    def on_event(event: ClientEvent) -> None:
        if recording:
            events.append({k: getattr(event, k) for k in event.__slots__})

    client = Client(
        url,
        get_token=get_token,
        backoff=Backoff(base=backoff["base"], cap=backoff["cap"]),
        on_event=on_event,
        request_timeout=settings.get("request_timeout", 2.0),
    )
    messages: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    pumps: list[asyncio.Task[None]] = []

    async def pump(room: Room) -> None:
        async for msg in room:
            messages.append({"room": msg.room, "payload": msg.payload})

    async def until(condition: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    client.start()
    for action in case["actions"]:
        do = action["do"]
        try:
            if do == "join":
                room = await client.join(action["room"], presence=action.get("presence", False))
                pumps.append(asyncio.create_task(pump(room)))
                results.append({"do": do, "ok": True})
            elif do == "publish":
                ack = await client.rooms[action["room"]].publish(
                    action["payload"], id=action.get("id"), timeout=action.get("timeout")
                )
                results.append(
                    {"do": do, "ok": True, "delivered": ack.delivered, "duplicate": ack.duplicate}
                )
            elif do == "request":
                data = await client.request(
                    action["type"], action.get("data"), timeout=action.get("timeout")
                )
                results.append({"do": do, "ok": True, "data": data})
            elif do == "presence":
                presence = client.rooms[action["room"]].presence
                results.append(
                    {"do": do, "count": presence.count, "keys": sorted(presence.members)}
                )
            elif do == "wait_messages":
                await until(lambda a=action: len(messages) >= a["count"], 5.0)
            elif do == "wait_event":
                await until(
                    lambda a=action: sum(e["kind"] == a["kind"] for e in events) >= a["count"], 5.0
                )
            elif do == "sleep":
                await asyncio.sleep(action["seconds"])
        except ClientError as exc:
            results.append({"do": do, **error_name(exc)})
    recording = False
    state = client.state
    await client.close()
    for task in pumps:
        await asyncio.wait_for(task, 2.0)  # iteration ends once the client is closed
    observed_events = [e for e in map(normalise_event, events) if e is not None]
    return {"events": observed_events, "messages": messages, "results": results, "state": state}
