"""The admin JSON API: stats, rooms, connections, policies, broadcasts and direct sends."""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from .. import jsoncodec
from ..connection import Connection
from ..envelope import RoomMessage
from ..errors import Unavailable
from ..manager import WebSocketManager
from . import metrics
from .http import BadRequest, error_response, json_response, load_body, load_query, unencodable
from .keys import ADMIN_KEY
from .openapi import build_spec
from .rooms import decode_cursor, hub_totals, members_page, room_totals, rooms_page
from .routing import RouteTable
from .schemas import (
    AdminStats,
    BroadcastRequestSchema,
    ConnectionDetailSchema,
    ConnectionListQuerySchema,
    ConnectionListSchema,
    DeliveredSchema,
    DisconnectedSchema,
    ErrorSchema,
    HistorySchema,
    PageQuerySchema,
    PoliciesSchema,
    PresenceSchema,
    RoomDetailSchema,
    RoomHistoryQuerySchema,
    RoomHistorySchema,
    RoomListSchema,
    SendRequestSchema,
    StatsQuerySchema,
    StatsSchema,
    ValidationErrorSchema,
)

__all__ = ["INDEX_ROUTE", "admin_prefix", "api"]

api = RouteTable("api")

INDEX_ROUTE = "lucent_ws_admin.show_dashboard"
"""Name of the dashboard route, whose URL is the admin prefix."""

_stats_schema = StatsSchema()
_history_schema = HistorySchema()
_connection_query_schema = ConnectionListQuerySchema()
_connection_detail_schema = ConnectionDetailSchema()
_page_query_schema = PageQuerySchema()
_stats_query_schema = StatsQuerySchema()
_broadcast_schema = BroadcastRequestSchema()
_send_schema = SendRequestSchema()
_policies_schema = PoliciesSchema()
_room_history_query_schema = RoomHistoryQuerySchema()

_NOT_FOUND: dict[int, type[ErrorSchema] | str] = {404: ErrorSchema}
_BAD_BODY: dict[int, Any] = {400: ErrorSchema, 422: ValidationErrorSchema}


def _manager(request: web.Request) -> WebSocketManager:
    return request.config_dict[ADMIN_KEY].manager


def _connection(request: web.Request) -> Connection | web.Response:
    conn_id = request.match_info["id"]
    conn = _manager(request).get_connection(conn_id)
    if conn is None:
        return error_response(404, "not_found", f"No connection {conn_id!r}")
    return conn


def _remote(conn: Connection) -> str | None:
    remote = getattr(conn.request, "remote", None)
    return remote if isinstance(remote, str) else None


def _summary(conn: Connection, now: float) -> dict[str, Any]:
    wall = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=now - conn.connected_at)
    return {
        "id": conn.id,
        "rooms": sorted(conn.rooms),
        "remote": _remote(conn),
        "connectedAt": wall.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


@api.route(
    "GET",
    "/stats",
    summary="Hub totals and the largest rooms",
    query=StatsQuerySchema,
    responses={200: StatsSchema, 422: ValidationErrorSchema},
)
async def get_stats(request: web.Request) -> web.StreamResponse:
    """Connections, the ``top`` largest rooms with member counts, room totals, counters."""
    state = request.config_dict[ADMIN_KEY]
    top = load_query(request, _stats_query_schema).get("top", state.top_rooms)
    totals = await room_totals(state.manager, top)
    stats: AdminStats = {
        **hub_totals(state.manager),
        "rooms": dict(totals["top"]),
        "roomCount": totals["rooms"],
        "memberships": totals["memberships"],
    }
    return json_response(_stats_schema.dump(stats))


def _cursor(request: web.Request) -> tuple[str | None, int]:
    """The page query: the key after which the page starts, and its size."""
    query = load_query(request, _page_query_schema)
    cursor = query.get("cursor")
    after = None if cursor is None else decode_cursor(cursor)
    if cursor is not None and after is None:
        raise BadRequest(
            json_response(
                {"error": "invalid_body", "fields": {"cursor": ["Not a cursor of this API."]}},
                status=422,
            )
        )
    return after, query["limit"]


@api.route(
    "GET",
    "/stats/history",
    summary="Connections and message rates over the last minutes",
    responses={200: HistorySchema},
)
async def get_history(request: web.Request) -> web.StreamResponse:
    """Samples for the dashboard chart, oldest first."""
    history = request.config_dict[ADMIN_KEY].history
    return json_response(
        _history_schema.dump({"interval": history.interval, "samples": history.samples()})
    )


@api.route(
    "GET",
    "/rooms",
    summary="Rooms and their member counts, a page at a time",
    query=PageQuerySchema,
    responses={200: RoomListSchema, 422: ValidationErrorSchema},
)
async def list_rooms(request: web.Request) -> web.StreamResponse:
    """Rooms by name, ``limit`` at a time; ``next`` is the cursor of the next page."""
    after, limit = _cursor(request)
    page, cursor, total = await rooms_page(_manager(request), after, limit)
    # Built in the schema's shape: dumping a thousand nested items through
    # marshmallow would hold the loop for tens of milliseconds.
    return json_response(
        {"rooms": [{"name": n, "members": c} for n, c in page], "total": total, "next": cursor}
    )


@api.route(
    "GET",
    "/rooms/{room:.+}/history",
    summary="A room's kept messages (rooms with history only)",
    query=RoomHistoryQuerySchema,
    responses={200: RoomHistorySchema, 422: ValidationErrorSchema, 503: ErrorSchema, **_NOT_FOUND},
)
async def get_room_history(request: web.Request) -> web.StreamResponse:
    """The messages as v2 clients get them, oldest first; 404 where the room keeps none."""
    manager = _manager(request)
    room = request.match_info["room"]
    query = load_query(request, _room_history_query_schema)
    if not manager.policies.for_room(room).history_size:
        return error_response(404, "not_found", f"Room {room!r} keeps no history")
    since = None
    if "since" in query:
        since = (query["since"], query.get("epoch", ""))
    try:
        page = await manager.fetch_history(room, since=since, limit=query.get("limit"))
    except Unavailable as exc:
        return error_response(503, "unavailable", exc.message)
    return json_response(
        {"room": room, "epoch": page.epoch, "offset": page.offset, "messages": page.messages}
    )


@api.route(
    "GET",
    "/rooms/{room:.+}/presence",
    summary="Who is in a presence room, grouped by user, cluster-wide",
    responses={200: PresenceSchema, 409: ErrorSchema},
)
async def get_room_presence(request: web.Request) -> web.StreamResponse:
    """The ``presence`` reply's shape; 409 ``presence_disabled`` without a presence policy.

    Declared before the room route: a room whose name ends in ``/presence`` is read here.
    """
    room = request.match_info["room"]
    presence = _manager(request).get_presence(room)
    if presence is None:
        return error_response(409, "presence_disabled", f"Room {room!r} has no presence")
    return json_response({"room": room, **presence})


@api.route(
    "GET",
    "/rooms/{room:.+}",
    summary="A room's members and their metadata, a page at a time",
    query=PageQuerySchema,
    responses={200: RoomDetailSchema, 422: ValidationErrorSchema, **_NOT_FOUND},
)
async def get_room(request: web.Request) -> web.StreamResponse:
    """Members by id, ``limit`` at a time; 404 if the room has no members."""
    manager = _manager(request)
    room = request.match_info["room"]
    after, limit = _cursor(request)

    def meta(conn_id: str) -> dict[str, Any] | None:
        conn = manager.get_connection(conn_id)
        if conn is not None:
            return dict(conn.meta)
        remote = manager.get_remote_connection(conn_id)
        return dict(remote.meta) if remote is not None else None

    members, cursor, total = await members_page(manager, room, after, limit, meta)
    if not total:
        return error_response(404, "not_found", f"No room {room!r}")
    return json_response({"name": room, "members": members, "total": total, "next": cursor})


@api.route(
    "GET",
    "/connections",
    summary="The newest connections",
    query=ConnectionListQuerySchema,
    responses={200: ConnectionListSchema, 422: ValidationErrorSchema},
)
async def list_connections(request: web.Request) -> web.StreamResponse:
    """At most ``limit`` connections, newest first, and the total count."""
    limit = load_query(request, _connection_query_schema)["limit"]
    manager = _manager(request)
    conns = [c for c in map(manager.get_connection, manager.connection_ids()) if c is not None]
    conns.sort(key=lambda c: c.connected_at, reverse=True)
    now = manager.now()
    return json_response(  # in the schema's shape, see list_rooms
        {"total": len(conns), "connections": [_summary(c, now) for c in conns[:limit]]}
    )


@api.route(
    "GET",
    "/connections/{id}",
    summary="One connection: rooms, metadata, address, age",
    responses={200: ConnectionDetailSchema, **_NOT_FOUND},
)
async def get_connection(request: web.Request) -> web.StreamResponse:
    """404 for an unknown id."""
    conn = _connection(request)
    if isinstance(conn, web.Response):
        return conn
    manager = _manager(request)
    now = manager.now()
    detail = _summary(conn, now)
    detail["meta"] = dict(conn.meta)
    detail["connectedFor"] = round(now - conn.connected_at, 3)
    detail["idleFor"] = round(now - conn.last_seen, 3)
    return json_response(_connection_detail_schema.dump(detail))


@api.route(
    "DELETE",
    "/connections/{id}",
    summary="Disconnect a connection (close code 4001)",
    responses={200: DisconnectedSchema, **_NOT_FOUND},
)
async def delete_connection(request: web.Request) -> web.StreamResponse:
    """Close with 4001 after flushing what was queued; 404 for an unknown id."""
    conn_id = request.match_info["id"]
    if not _manager(request).disconnect(conn_id):  # on whichever node holds it
        return error_response(404, "not_found", f"No connection {conn_id!r}")
    return json_response({"disconnected": True})


@api.route(
    "POST",
    "/broadcast",
    summary="Send a payload to a room, or to everyone",
    body=BroadcastRequestSchema,
    responses={200: DeliveredSchema, 503: ErrorSchema, **_BAD_BODY},
)
async def broadcast(request: web.Request) -> web.StreamResponse:
    """``payload`` is delivered verbatim; ``exclude`` lists ids to skip."""
    body = await load_body(request, _broadcast_schema)
    manager = _manager(request)
    room = body.get("room")
    try:
        if room is None:
            delivered = manager.broadcast_all(body["payload"], exclude=body["excluded"])
        else:
            data = jsoncodec.dumps(body["payload"])
            published = await manager.publish_confirmed(RoomMessage(room, data), body["excluded"])
            if published.offset is not None:
                return json_response(
                    {
                        "delivered": published.delivered,
                        "offset": published.offset,
                        "epoch": published.epoch,
                    }
                )
            delivered = published.delivered
    except TypeError as exc:
        raise unencodable(exc) from None
    except Unavailable as exc:
        return error_response(503, "unavailable", exc.message)
    return json_response({"delivered": delivered})


@api.route(
    "POST",
    "/send",
    summary="Send a payload to one connection",
    body=SendRequestSchema,
    responses={200: DeliveredSchema, **_BAD_BODY, **_NOT_FOUND},
)
async def send(request: web.Request) -> web.StreamResponse:
    """404 for an unknown id."""
    body = await load_body(request, _send_schema)
    try:
        sent = _manager(request).send_to(body["id"], body["payload"])
    except TypeError as exc:
        raise unencodable(exc) from None
    if not sent:
        return error_response(404, "not_found", f"No connection {body['id']!r}")
    return json_response({"delivered": 1})


@api.route(
    "GET",
    "/policies",
    summary="The room policies",
    responses={200: PoliciesSchema},
)
async def get_policies(request: web.Request) -> web.StreamResponse:
    """Each policy in the order rooms are matched (exact names, then the longest
    prefix first), and the default policy of the rooms none matches."""
    policies = _manager(request).policies
    return json_response(
        _policies_schema.dump(
            {
                "policies": [p.as_json() for p in policies if p is not policies.default],
                "default": policies.default.as_json(),
            }
        )
    )


@api.route(
    "GET",
    "/openapi.json",
    summary="This document",
    responses={200: "application/json"},
)
async def get_openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI 3 document, with the server URL this app is mounted at."""
    state = request.config_dict[ADMIN_KEY]
    return json_response(build_spec(state.routes, server_url=admin_prefix(request).rstrip("/")))


@api.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    responses={200: metrics.CONTENT_TYPE},
)
async def get_metrics(request: web.Request) -> web.StreamResponse:
    """The hub's metrics in the Prometheus text format, read at scrape time."""
    state = request.config_dict[ADMIN_KEY]
    await metrics.prepare(state.registry, state.manager)
    body = metrics.render(state.registry)
    response = web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})
    response.headers["Cache-Control"] = "no-store"
    return response


def admin_prefix(request: web.Request) -> str:
    """The URL path the admin app is mounted at, with a trailing slash (``/admin/``)."""
    return str(request.app.router[INDEX_ROUTE].url_for())
