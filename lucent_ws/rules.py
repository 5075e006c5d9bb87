"""The rules a field of a client message must satisfy (pure).

A rule takes a value of the field's JSON type and returns its errors, ``()``
when it is valid. :mod:`lucent_ws.protocol` attaches them to fields with
``Annotated`` and derives parsing and error texts from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "MAX_PAYLOAD_DEPTH",
    "MAX_REF_LENGTH",
    "MAX_ROOM_LENGTH",
    "NO_ERRORS",
    "Rule",
    "check_limit",
    "check_payload_depth",
    "check_publish_id",
    "check_room",
    "check_since",
]

MAX_ROOM_LENGTH: Final = 128
MAX_REF_LENGTH: Final = 64
MAX_PAYLOAD_DEPTH: Final = 128
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

Rule = Callable[[Any], tuple[str, ...]]
"""A field's rule: the errors of a value of the field's JSON type, ``()`` when valid."""

NO_ERRORS: Final[tuple[str, ...]] = ()


def check_room(value: str) -> tuple[str, ...]:
    """The errors of a room name: non-empty, at most 128 characters, no control characters.

    The one room rule, for the wire protocol and the admin API alike.
    """
    if 0 < len(value) <= MAX_ROOM_LENGTH and _CONTROL_CHARS.search(value) is None:
        return NO_ERRORS
    errors = []
    if not 0 < len(value) <= MAX_ROOM_LENGTH:
        errors.append(f"Length must be between 1 and {MAX_ROOM_LENGTH}.")
    if _CONTROL_CHARS.search(value) is not None:
        errors.append("Must not contain control characters.")
    return tuple(errors)


def check_payload_depth(value: Any) -> tuple[str, ...]:
    """The error of a value nested deeper than MAX_PAYLOAD_DEPTH arrays/objects, if it is."""
    if type(value) is not dict and type(value) is not list:
        return NO_ERRORS
    level: list[Any] = [value]  # the arrays and objects at one depth, from 1
    for _ in range(MAX_PAYLOAD_DEPTH):
        deeper = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        if not deeper:
            return NO_ERRORS
        level = deeper
    return (f"Nested deeper than {MAX_PAYLOAD_DEPTH} levels.",)


def check_since(value: dict[str, Any]) -> tuple[str, ...]:
    """A history position: ``{"offset": N, "epoch": E}``, N a non-negative integer."""
    offset, epoch = value.get("offset"), value.get("epoch")
    if type(offset) is not int or offset < 0:
        return ("offset must be a non-negative integer.",)
    if not isinstance(epoch, str) or not 0 < len(epoch) <= MAX_REF_LENGTH:
        return (f"epoch must be a string of 1 to {MAX_REF_LENGTH} characters.",)
    return NO_ERRORS


def check_publish_id(value: str) -> tuple[str, ...]:
    """A publish id: 1 to 64 characters."""
    if not 0 < len(value) <= MAX_REF_LENGTH:
        return (f"Length must be between 1 and {MAX_REF_LENGTH}.",)
    return NO_ERRORS


def check_limit(value: int) -> tuple[str, ...]:
    """A positive count."""
    return NO_ERRORS if value > 0 else ("Must be greater than or equal to 1.",)
