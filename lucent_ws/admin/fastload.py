"""Fast loaders derived from marshmallow schemas, for request bodies that are plainly valid.

``schema.load`` costs more than the rest of a small admin request. :func:`fast_loader`
reads a schema's declared fields once and returns a function that loads the common
shapes directly (strings, raw JSON values, lists of those, each with the field's own
validators) and answers None for anything else, which the caller then gives to
``schema.load`` for the result or its error messages. A schema with hooks, ``many``,
or a field type the loader does not know gets no fast loader at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing

__all__ = ["FastLoader", "fast_loader"]

FastLoader = Callable[[Any], dict[str, Any] | None]
"""What ``schema.load(data)`` returns if ``data`` is plainly valid, else None."""

Check = Callable[[Any], bool]
"""True if a present, non-null value loads to itself (lists: to an equal copy)."""


class _Plan(NamedTuple):
    key: str  # the key in the input (the field's data_key)
    attr: str  # the key in the result
    required: bool
    allow_none: bool
    load_default: Any
    check: Check
    copy: bool  # a List field loads to a new list


def _validated(field: fields.Field[Any], check: Check) -> Check:
    validators = tuple(field.validators)
    if not validators:
        return check

    def checked(value: Any) -> bool:
        if not check(value):
            return False
        try:
            for validator in validators:
                validator(value)
        except ValidationError:
            return False
        return True

    return checked


def _is_str(value: Any) -> bool:
    return type(value) is str


def _any(value: Any) -> bool:
    return True


def _check(field: fields.Field[Any]) -> Check | None:
    """The check of a field's value, or None for a field the fast loader does not know."""
    if type(field) is fields.String:
        return _validated(field, _is_str)
    if type(field) is fields.Raw:
        return _validated(field, _any)
    if type(field) is fields.List:
        inner = field.inner
        item = _check(inner)
        if item is None or inner.allow_none:
            return None

        def each(value: Any) -> bool:
            return type(value) is list and all(item(element) for element in value)

        return _validated(field, each)
    return None


def fast_loader(schema: Schema) -> FastLoader | None:
    """A fast loader for ``schema``, or None if the schema needs marshmallow for every body."""
    if schema.many or any(schema._hooks.values()) or schema.unknown not in (RAISE, EXCLUDE):
        return None
    plans: list[_Plan] = []
    for attr, field in schema.load_fields.items():
        check = _check(field)
        if check is None:
            return None
        key = field.data_key if field.data_key is not None else attr
        copy = type(field) is fields.List
        plans.append(
            _Plan(key, attr, field.required, field.allow_none, field.load_default, check, copy)
        )
    known = frozenset(plan.key for plan in plans)
    strict = schema.unknown == RAISE

    def load(data: Any) -> dict[str, Any] | None:
        if type(data) is not dict or (strict and not data.keys() <= known):
            return None
        loaded: dict[str, Any] = {}
        for key, attr, required, allow_none, load_default, check, copy in plans:
            if key not in data:
                if required:
                    return None
                if load_default is not missing:
                    loaded[attr] = load_default() if callable(load_default) else load_default
                continue
            value = data[key]
            if value is None:
                if not allow_none:
                    return None
            elif not check(value):
                return None
            elif copy:
                value = list(value)
            loaded[attr] = value
        return loaded

    return load
