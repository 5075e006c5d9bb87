"""JSON plumbing of the admin API: body parsing, validation and error answers."""

from __future__ import annotations

import json
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web
from marshmallow import Schema, ValidationError

from .. import jsoncodec
from .fastload import FastLoader, fast_loader

__all__ = [
    "BadRequest",
    "error_response",
    "json_response",
    "load_body",
    "load_query",
    "unencodable",
]


def _default(value: Any) -> Any:
    # Metadata set by the host app may hold values JSON cannot express.
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot express become strings instead of a 500."""
    try:
        return jsoncodec.dumps(value, _default)
    except TypeError:  # a lone surrogate in what the host stored: UTF-8 cannot carry it
        return jsoncodec.dumps(_utf8_safe(value), _default)


def _utf8_safe(value: Any) -> Any:
    """``value`` with every string's lone surrogates replaced by ``?``."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_utf8_safe(k): _utf8_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_utf8_safe(v) for v in value]
    return value


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer that is never cached."""
    response = web.Response(
        body=encode(data), status=status, headers=headers, content_type="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def error_response(
    status: int, error: str, message: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": ..., "message": ...}`` with ``status``."""
    return json_response({"error": error, "message": message}, status=status, headers=headers)


class BadRequest(Exception):
    """A request the API refuses; carries the answer to send."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def load_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Parse the JSON body and validate it; raises :class:`BadRequest` (400 or 422)."""
    raw = await request.read()
    try:
        data = jsoncodec.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        message = "Body is not valid JSON" if raw else "Body is empty; JSON expected"
        if isinstance(exc, json.JSONDecodeError):
            message = f"Body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise BadRequest(error_response(400, "invalid_json", message)) from None
    try:
        loader = _fast_loaders[schema]
    except KeyError:
        loader = _fast_loaders[schema] = fast_loader(schema)
    quick = loader(data) if loader is not None else None
    return quick if quick is not None else _validate(schema, data)


_fast_loaders: WeakKeyDictionary[Schema, FastLoader | None] = WeakKeyDictionary()


def load_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Validate the query string; raises :class:`BadRequest` (422)."""
    return _validate(schema, dict(request.query))


def unencodable(exc: TypeError) -> BadRequest:
    """422 for a payload the hub cannot encode (e.g. nested too deeply)."""
    return BadRequest(
        json_response(
            {"error": "invalid_body", "fields": {"payload": [f"Cannot be encoded: {exc}"]}},
            status=422,
        )
    )


def _validate(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        fields = {str(name): _flatten(errors) for name, errors in messages.items()}
        raise BadRequest(
            json_response({"error": "invalid_body", "fields": fields}, status=422)
        ) from None
    return loaded


def _flatten(errors: Any, where: str = "") -> list[str]:
    """A field's messages as one list; nested ones (list items) name their position."""
    if isinstance(errors, dict):
        return [m for key, sub in errors.items() for m in _flatten(sub, f"{where}[{key}] ")]
    if isinstance(errors, list):
        return [m for item in errors for m in _flatten(item, where)]
    return [f"{where}{errors}"]
