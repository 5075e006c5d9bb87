"""The TOML configuration file (``--config``): every command-line flag, plus room policies.

Top-level keys are the flags' names with underscores (``max_rooms = 20``); each
``[[rooms]]`` table is one :class:`~lucent_ws.policy.RoomPolicy`. The file is read
with :mod:`tomllib` and validated with marshmallow: the flags' schema is derived
from the command line's own parser, so a key is valid in the file exactly when
it is a flag, with the flag's type. A bad file raises
:class:`~lucent_ws.errors.ConfigurationError` with one line naming the key.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .errors import ConfigurationError
from .policy import Policies, RoomPolicy

__all__ = ["ConfigFile", "load_config"]

_FIELDS_BY_TYPE: dict[Any, type[fields.Field[Any]]] = {
    int: fields.Integer,
    float: fields.Float,
    str: fields.String,
}


class _Boolean(fields.Boolean):
    """A TOML boolean: ``true`` or ``false``, never ``1`` or ``"yes"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _boolean() -> fields.Boolean:
    return _Boolean()


class RoomPolicySchema(Schema):
    """One ``[[rooms]]`` table."""

    class Meta:
        unknown = RAISE

    pattern = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=128),
            validate.Regexp(r"^[^*]*\*?$", error="an exact name, or a prefix ending in '*'."),
        ],
    )
    presence = _boolean()
    join_leave = _boolean()
    presence_info = fields.List(fields.String())
    history_size = fields.Integer(strict=True, validate=validate.Range(min=0))
    history_ttl = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    client_publish = fields.String(validate=validate.OneOf(["members", "none"]))
    max_members = fields.Integer(strict=True, validate=validate.Range(min=0))


def _flag_field(action: argparse.Action) -> fields.Field[Any] | None:
    if isinstance(action, argparse._StoreTrueAction):
        return _boolean()
    if isinstance(action, argparse._AppendAction):
        return fields.List(fields.String())
    if not isinstance(action, argparse._StoreAction):
        return None  # --help, --version
    kind = _FIELDS_BY_TYPE.get(action.type, fields.String)
    return kind(strict=True) if kind is fields.Integer else kind()


def flags_schema(parser: argparse.ArgumentParser) -> Schema:
    """A schema of the file's top-level keys: one field per flag, typed like the flag."""
    declared: dict[str, fields.Field[Any]] = {}
    for action in parser._actions:
        field_ = _flag_field(action)
        if field_ is not None and action.dest != "config":
            declared[action.dest] = field_
    declared["rooms"] = fields.List(fields.Nested(RoomPolicySchema))
    return Schema.from_dict(declared, name="ConfigFileSchema")(unknown=RAISE)


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A validated configuration file: flag values by ``dest``, and room policies."""

    values: dict[str, Any] = field(default_factory=dict)
    policies: Policies = field(default_factory=Policies)


def _first_error(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        key, detail = next(iter(messages.items()))
        name = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        return _first_error(detail, str(name))
    if isinstance(messages, list) and messages and not isinstance(messages[0], str):
        return _first_error(messages[0], path)
    text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
    return f"key '{path}': {text}"


def load_config(path: str | Path, parser: argparse.ArgumentParser) -> ConfigFile:
    """Read and validate ``path``; ConfigurationError with one line for a bad file."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path}: not valid TOML: {exc}") from None
    try:
        loaded = flags_schema(parser).load(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"config file {path}: {_first_error(exc.messages)}") from None
    rooms = loaded.pop("rooms", [])
    policies = []
    for index, room in enumerate(rooms):
        try:
            policies.append(
                RoomPolicy(**{**room, "presence_info": tuple(room.get("presence_info", ()))})
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"config file {path}: key 'rooms[{index}]': {exc}") from None
    try:
        return ConfigFile(loaded, Policies(policies))
    except ConfigurationError as exc:
        raise ConfigurationError(f"config file {path}: key 'rooms': {exc}") from None
