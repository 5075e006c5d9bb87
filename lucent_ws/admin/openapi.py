"""The OpenAPI 3 document of the admin API, generated from the marshmallow schemas."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from ..version import __version__
from .routing import Route
from .schemas import ErrorSchema

__all__ = ["build_spec", "openapi_path"]

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_DESCRIPTIONS = {
    200: "OK",
    303: "Redirect",
    400: "Body is not JSON",
    401: "Admin token or session required",
    403: "CSRF token missing or wrong",
    404: "Not found",
    422: "Body or query has the wrong shape",
}


def openapi_path(path: str) -> str:
    """An aiohttp route path in OpenAPI form: ``/rooms/{room:.+}`` -> ``/rooms/{room}``."""
    return _PARAM.sub(r"{\1}", path)


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, body in sorted(route.responses.items()):
        answer: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "")}
        if isinstance(body, str):
            if body:
                answer["content"] = {body: {"schema": {"type": "string"}}}
        else:
            answer["content"] = {"application/json": {"schema": body}}
        responses[str(status)] = answer
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.public:
        operation["security"] = []
    else:
        responses["401"] = {
            "description": _DESCRIPTIONS[401],
            "content": {"application/json": {"schema": ErrorSchema}},
        }
    parameters: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    if route.query is not None:
        parameters.append({"in": "query", "schema": route.query})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    elif route.form:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string", "description": text}
                            for name, text in route.form.items()
                        },
                        "required": sorted(route.form),
                    }
                }
            },
        }
    return operation


def build_spec(routes: Iterable[Route], *, server_url: str = "/admin") -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``routes``, served under ``server_url``."""

    spec = APISpec(
        title="lucent_ws admin API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Stats, rooms, connections and broadcasts of a lucent_ws hub. "
            "Authenticate with `Authorization: Bearer <admin token>`."
        },
        servers=[{"url": server_url}],
        security=[{"bearerAuth": []}, {"sessionCookie": []}],
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "sessionCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "lucent_ws_admin",
            "description": "Dashboard session; state-changing requests also need X-CSRF-Token.",
        },
    )
    by_path: dict[str, dict[str, Any]] = {}
    for route in routes:
        by_path.setdefault(openapi_path(route.path), {})[route.method.lower()] = _operation(route)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
