"""The OpenAPI document: valid, and in step with the routes the app really serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from openapi_spec_validator import validate

from lucent_ws.admin import create_admin_app
from lucent_ws.admin.openapi import openapi_path

from .conftest import Hub

METHODS = {"get", "post", "put", "delete", "patch", "head", "options"}


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route of a standalone admin app."""
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        assert path, info
        routes.add((route.method.lower(), openapi_path(path)))
    return routes


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method in METHODS
    }


async def test_the_document_is_valid_openapi_3(hub: Hub) -> None:
    status, doc = await hub.call("GET", "openapi.json")
    assert status == 200
    validate(doc)
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": hub.admin.rstrip("/")}]


async def test_every_route_is_documented_and_every_documented_route_exists(hub: Hub) -> None:
    _, doc = await hub.call("GET", "openapi.json")
    served = served_routes(create_admin_app(hub.manager, token="t"))
    assert documented_routes(doc) == served


async def test_documented_paths_answer_under_the_server_url(hub: Hub) -> None:
    _, doc = await hub.call("GET", "openapi.json")
    for method, path in documented_routes(doc):
        if method != "get" or "{" in path:
            continue
        resp = await hub.client.get(
            doc["servers"][0]["url"] + path,
            headers={"Authorization": "Bearer test-admin-token-0123456789"},
        )
        assert resp.status == 200, path


async def test_bodies_come_from_the_marshmallow_schemas(hub: Hub) -> None:
    _, doc = await hub.call("GET", "openapi.json")
    schemas = doc["components"]["schemas"]
    broadcast = doc["paths"]["/broadcast"]["post"]
    ref = broadcast["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schemas[ref.rsplit("/", 1)[1]]
    assert body["required"] == ["payload"]
    assert set(body["properties"]) == {"room", "payload", "exclude"}
    assert set(broadcast["responses"]) == {"200", "400", "401", "422", "503"}
    assert doc["paths"]["/connections/{id}"]["delete"]["responses"]["404"]
    assert doc["paths"]["/"]["get"]["security"] == []
    assert {"bearerAuth", "sessionCookie"} <= set(doc["components"]["securitySchemes"])
