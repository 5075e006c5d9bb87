"""The JSON wire protocol: parsing client messages and encoding server messages.

Pure: no I/O, no aiohttp. :func:`parse` turns a text frame into one of the
client message classes or raises :class:`~lucent_ws.errors.ProtocolError`
carrying the error code and text to send back. The ``encode_*`` functions
return the UTF-8 JSON of each server message.

Each client message type is declared once, as a dataclass in :data:`MESSAGE_TYPES`:
its fields' annotations say what :func:`parse` accepts (the JSON type, whether
``null`` or absence is allowed, and a rule such as :func:`check_room` in
``Annotated``), and the error texts derive from the same declaration.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, NamedTuple, Union, get_args, get_origin, get_type_hints

from . import jsoncodec
from .errors import ProtocolError
from .rules import (
    MAX_PAYLOAD_DEPTH,
    MAX_REF_LENGTH,
    MAX_ROOM_LENGTH,
    NO_ERRORS,
    Rule,
    check_limit,
    check_payload_depth,
    check_publish_id,
    check_room,
    check_since,
)

__all__ = [
    "MAX_PAYLOAD_DEPTH",
    "MAX_REF_LENGTH",
    "MAX_ROOM_LENGTH",
    "MESSAGE_TYPES",
    "V2_ONLY",
    "AppMessage",
    "Broadcast",
    "ClientMessage",
    "ErrorCode",
    "History",
    "Join",
    "Leave",
    "Payload",
    "Ping",
    "Pong",
    "Presence",
    "Ref",
    "Room",
    "Rule",
    "Since",
    "check_limit",
    "check_payload_depth",
    "check_publish_id",
    "check_room",
    "check_since",
    "parse",
    "peek_ref",
]

Ref = int | str


class ErrorCode(StrEnum):
    """The error codes of ``{"type": "error", "code": ...}`` replies (JSON: the plain string)."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_TYPE = "unknown_type"
    FORBIDDEN = "forbidden"
    NOT_MEMBER = "not_member"
    TOO_MANY_ROOMS = "too_many_rooms"
    RATE_LIMITED = "rate_limited"
    UNSUPPORTED_DATA = "unsupported_data"
    INTERNAL_ERROR = "internal_error"
    PUBLISH_FORBIDDEN = "publish_forbidden"
    ROOM_FULL = "room_full"
    PRESENCE_DISABLED = "presence_disabled"
    HISTORY_DISABLED = "history_disabled"
    UNAVAILABLE = "unavailable"


Room = Annotated[str, check_room]
"""The annotation of a field holding a room name."""
Payload = Annotated[Any, check_payload_depth]
"""The annotation of a field holding any JSON value (``null`` included) nested at most 128 deep."""


# --- client messages -------------------------------------------------------------


Since = Annotated[dict[str, Any], check_since]
"""The annotation of a history position ``{"offset": N, "epoch": E}``."""


@dataclass(frozen=True, slots=True)
class Join:
    """``{"type": "join", "room": R}``; v2 may add ``since`` to recover missed messages."""

    room: Room
    since: Since | None = None
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """``{"type": "leave", "room": R}``."""

    room: Room
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """``{"type": "broadcast", "room": R, "payload": P}``; ``payload`` may be ``null``.

    ``id`` (v2) makes the publish idempotent within a room's history window.
    """

    room: Room
    payload: Payload
    id: Annotated[str, check_publish_id] | None = None
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"type": "ping"}``: the server answers ``pong``."""

    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """``{"type": "pong"}``: a heartbeat answer; no reply."""

    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """``{"type": "presence", "room": R}`` (v2): who is in a presence room."""

    room: Room
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class History:
    """``{"type": "history", "room": R, "since"?: {...}, "limit"?: N}`` (v2)."""

    room: Room
    since: Since | None = None
    limit: Annotated[int, check_limit] | None = None
    ref: Ref | None = None


@dataclass(frozen=True, slots=True)
class AppMessage:
    """A message of an application type registered on the manager (any fields)."""

    type: str
    data: dict[str, Any]
    ref: Ref | None = None


ClientMessage = Join | Leave | Broadcast | Ping | Pong | Presence | History

MESSAGE_TYPES: Final[Mapping[str, type[ClientMessage]]] = {
    "join": Join,
    "leave": Leave,
    "broadcast": Broadcast,
    "ping": Ping,
    "pong": Pong,
    "presence": Presence,
    "history": History,
}
"""Each client message type by its ``type``; a new type is a dataclass added here."""

V2_ONLY: Final = frozenset({"presence", "history"})
"""Types a v1 connection does not have (it gets ``unknown_type``, as before v2)."""


# --- parsing ---------------------------------------------------------------------

_MISSING: Final = object()
_MISSING_TEXT: Final = "Missing data for required field."
_NULL_TEXT: Final = "Field may not be null."
_TYPE_TEXTS: Final[dict[type, str]] = {
    str: "Not a valid string.",
    int: "Not a valid integer.",
    bool: "Not a valid boolean.",
    dict: "Not a valid mapping type.",
}


class _Field(NamedTuple):
    """What :func:`parse` checks of one field, derived from its dataclass annotation."""

    name: str
    json_type: type | None  # the exact type the JSON value must have; None: any
    type_text: str  # the error when it has another
    rule: Rule | None
    required: bool
    nullable: bool
    default: Any


def _field(field: dataclasses.Field[Any], hint: Any) -> _Field:
    rule: Rule | None = None
    nullable = False
    while True:
        origin = get_origin(hint)
        if origin is Annotated:
            hint, *extras = get_args(hint)
            rule = next((extra for extra in extras if callable(extra)), rule)
        elif origin is dict:
            hint = dict
        elif origin is Union or origin is types.UnionType:
            options = [arg for arg in get_args(hint) if arg is not type(None)]
            nullable = len(options) < len(get_args(hint))
            (hint,) = options
        else:
            break
    if hint is not Any and hint not in _TYPE_TEXTS:
        raise TypeError(f"field {field.name!r}: no JSON type for {hint!r}")
    required = field.default is dataclasses.MISSING
    return _Field(
        name=field.name,
        json_type=None if hint is Any else hint,
        type_text=_TYPE_TEXTS.get(hint, ""),
        rule=rule,
        required=required,
        nullable=nullable or hint is Any,
        default=None if required else field.default,
    )


def _fields_of(cls: type[ClientMessage]) -> tuple[_Field, ...]:
    """The checked fields of a message class; ``ref`` is last and checked by :func:`parse`."""
    declared = dataclasses.fields(cls)
    if not declared or declared[-1].name != "ref":
        raise TypeError(f"{cls.__name__}: 'ref' must be the last field")
    hints = get_type_hints(cls, include_extras=True)
    return tuple(_field(field, hints[field.name]) for field in declared[:-1])


_Checked = tuple[str, type | None, Rule | None, _Field]  # what the valid path reads first
_SPECS: Final[dict[str, tuple[Callable[..., ClientMessage], tuple[_Checked, ...]]]] = {
    name: (cls, tuple((f.name, f.json_type, f.rule, f) for f in _fields_of(cls)))
    for name, cls in MESSAGE_TYPES.items()
}


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _valid_ref(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and len(value) <= MAX_REF_LENGTH


def peek_ref(text: str | bytes) -> Ref | None:
    """The message's valid ``ref``, or None; never raises (for replies without parsing)."""
    try:
        data = jsoncodec.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if ref is not None and _valid_ref(ref) else None


def parse(
    text: str | bytes, *, version: int = 1, app_types: Container[str] = ()
) -> ClientMessage | AppMessage:
    """Parse one client text frame of a connection speaking protocol ``version``.

    A ``type`` in ``app_types`` that is not built in gives an :class:`AppMessage`.
    Raises :class:`ProtocolError` with code ``invalid_json``, ``invalid_message``
    or ``unknown_type``; its ``ref`` is the message's ``ref`` when that is valid.
    An ``invalid_message`` text names each faulty field in declaration order,
    ``"room: Not a valid string.; payload: Missing data for required field."``.
    """
    try:
        data = jsoncodec.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(ErrorCode.INVALID_JSON, "Invalid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "Message must be a JSON object")
    ref = data.get("ref")
    if ref is not None and not _valid_ref(ref):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE,
            f"ref must be an integer or a string of at most {MAX_REF_LENGTH} characters",
        )
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "type: Missing or not a string.", ref)
    spec = _SPECS.get(kind) if version >= 2 or kind not in V2_ONLY else None
    if spec is None:
        if kind in app_types:
            return AppMessage(kind, data, ref)
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"Unknown type: {_clip(kind)}", ref)
    cls, fields = spec
    values: list[Any] = []
    errors: list[str] | None = None
    for name, json_type, rule, field in fields:
        value = data.get(name, _MISSING)
        if type(value) is json_type or (
            json_type is None and value is not None and value is not _MISSING
        ):
            problems = rule(value) if rule is not None else NO_ERRORS
            if not problems:
                values.append(value)
                continue
            problem = " ".join(problems)
        elif value is _MISSING:
            if not field.required:
                values.append(field.default)
                continue
            problem = _MISSING_TEXT
        elif value is None:
            if field.nullable:
                values.append(None)
                continue
            problem = _NULL_TEXT
        else:
            problem = field.type_text
        if errors is None:
            errors = []
        errors.append(f"{name}: {problem}")
    if errors is not None:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "; ".join(errors), ref)
    values.append(ref)
    return cls(*values)
