"""JSON encoding with orjson when installed, the stdlib otherwise.

For JSON values (dicts, lists, strings, numbers, booleans, None) both backends
encode the same data: compact UTF-8 bytes, non-string dict keys coerced to
strings, integers of any size, and non-finite floats (NaN, ±Infinity, which
JSON cannot express) written as ``null``; float spelling may differ
(``1e-07`` or ``1e-7``). ``dumps`` raises :class:`TypeError` for a value that is
not JSON-serialisable (or nested too deeply, or a string with a lone surrogate);
``loads`` raises :class:`ValueError` for invalid JSON. ``dumps(value, default)`` calls
``default`` for what it cannot encode, like :func:`json.dumps` (orjson only for the
types it does not encode itself).

Differences outside JSON values: orjson also encodes ``datetime``, ``UUID``,
dataclasses and enums, which the stdlib refuses (convert them yourself to stay
portable), decodes integers beyond 64 bits as floats, and refuses a lone surrogate
escape (``"\\ud800"``) as invalid JSON where the stdlib reads it into a string that
``dumps`` then refuses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["BACKEND", "Default", "Dumps", "dumps", "loads", "std_dumps", "std_loads"]

Default = Callable[[Any], Any]
"""Converts a value JSON cannot express into one it can (``default`` of ``dumps``)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _finite(value: Any) -> Any:
    """Copy of ``value`` with non-finite floats replaced by None (rare path)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def std_dumps(value: Any, default: Default | None = None) -> bytes:
    """Encode with the standard library (``default`` as in :func:`json.dumps`)."""
    try:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
        )
    except ValueError as exc:
        if "Circular" in str(exc):
            raise TypeError(str(exc)) from exc
        try:
            text = json.dumps(
                _finite(value), separators=(",", ":"), ensure_ascii=False, default=default
            )
        except RecursionError:
            raise TypeError("value is nested too deeply") from None
    except RecursionError:
        raise TypeError("value is nested too deeply") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise TypeError("string contains a lone surrogate, which UTF-8 cannot carry") from None


def std_loads(data: str | bytes) -> Any:
    """Decode with the standard library, refusing NaN and Infinity literals."""
    return json.loads(data, parse_constant=_reject_constant)


class Dumps(Protocol):
    """The signature of :data:`dumps`."""

    def __call__(self, value: Any, default: Default | None = None) -> bytes: ...


dumps: Dumps
loads: Callable[[str | bytes], Any]

try:
    import orjson
except ImportError:  # pragma: no cover - exercised when orjson is absent
    BACKEND = "json"
    dumps = std_dumps
    loads = std_loads
else:
    BACKEND = "orjson"
    _OPTIONS = orjson.OPT_NON_STR_KEYS

    def _orjson_dumps(value: Any, default: Default | None = None) -> bytes:
        try:
            return orjson.dumps(value, default=default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # Integers beyond 64 bits and similar corner cases: the stdlib agrees on
            # the output and raises TypeError for what is truly not serialisable.
            return std_dumps(value, default)

    dumps = _orjson_dumps
    loads = orjson.loads
