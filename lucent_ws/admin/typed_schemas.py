"""marshmallow schemas derived from TypedDicts, so a JSON shape is declared once.

The hub declares the shape of what it reports (``Stats``, ``NodeStats``) as TypedDicts;
:func:`schema_from_typeddict` builds the marshmallow schema the admin API dumps with and
documents in OpenAPI: a key the TypedDict marks ``NotRequired`` is not required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import (
    Any,
    Final,
    NotRequired,
    Required,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from marshmallow import Schema, fields

__all__ = ["schema_from_typeddict"]

_SCALARS: Final[Mapping[Any, type[fields.Field[Any]]]] = {
    int: fields.Integer,
    float: fields.Float,
    bool: fields.Boolean,
    str: fields.String,
}
_derived: dict[type, type[Schema]] = {}


def _field(hint: Any, **kwargs: Any) -> fields.Field[Any]:
    if hint in _SCALARS:
        return _SCALARS[hint](**kwargs)
    origin, args = get_origin(hint), get_args(hint)
    if origin is dict and args[0] is str:
        return fields.Dict(keys=fields.String(), values=_field(args[1]), **kwargs)
    if origin is list:
        return fields.List(_field(args[0]), **kwargs)
    if is_typeddict(hint):
        return fields.Nested(schema_from_typeddict(hint), **kwargs)
    raise TypeError(f"no marshmallow field for {hint!r}")


def schema_from_typeddict(
    shape: type, *, descriptions: Mapping[str, str] | None = None
) -> type[Schema]:
    """The schema class ``<Shape>Schema`` of a TypedDict; one class per TypedDict.

    Values may be ``int``, ``float``, ``bool``, ``str``, ``dict[str, V]``, ``list[V]``
    or another TypedDict (nested). ``descriptions`` documents keys in OpenAPI; they
    apply when the schema is first derived. A nested TypedDict that the defining module
    imports only for type checking resolves by name once its own schema is derived, so
    derive nested shapes (with their descriptions) before the shapes that hold them.
    """
    if shape in _derived:
        if descriptions:
            raise TypeError(f"{shape.__name__} is derived already, with its descriptions")
        return _derived[shape]
    if not is_typeddict(shape):
        raise TypeError(f"{shape!r} is not a TypedDict")
    required_keys: frozenset[str] = getattr(shape, "__required_keys__")  # noqa: B009 - not on `type`
    notes = descriptions or {}
    hints = get_type_hints(
        shape, localns={known.__name__: known for known in _derived}, include_extras=True
    )
    if not notes.keys() <= hints.keys():
        raise TypeError(f"{shape.__name__} has no key {sorted(notes.keys() - hints.keys())}")
    declared = {}
    for key, hint in hints.items():
        # __required_keys__ misses NotRequired in string annotations before Python 3.12.
        required = key in required_keys
        while get_origin(hint) in (NotRequired, Required):
            required = get_origin(hint) is Required
            (hint,) = get_args(hint)
        metadata = {"description": notes[key]} if key in notes else {}
        declared[key] = _field(hint, required=required, metadata=metadata)
    schema = Schema.from_dict(declared, name=f"{shape.__name__}Schema")
    schema.__doc__ = shape.__doc__
    _derived[shape] = schema
    return schema
