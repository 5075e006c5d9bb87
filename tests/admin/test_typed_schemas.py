"""Schemas derived from TypedDicts: the stats the hub reports, documented once."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import pytest
from marshmallow import fields

from lucent_ws import WebSocketManager
from lucent_ws.admin.schemas import AdminStats, NodeStatsSchema, StatsSchema
from lucent_ws.admin.typed_schemas import schema_from_typeddict
from lucent_ws.stats import NodeStats, Stats


class Inner(TypedDict):
    """An inner shape."""

    flag: bool


class Outer(TypedDict, total=False):
    """An outer shape."""

    names: list[str]
    inner: dict[str, Inner]
    ratio: float


class Sub(Outer):
    must: int


class Mixed(TypedDict):
    count: int
    note: NotRequired[str]
    outer: Outer


def test_fields_follow_the_annotations() -> None:
    schema = schema_from_typeddict(Mixed, descriptions={"note": "a note"})
    assert schema.__name__ == "MixedSchema"
    declared = schema._declared_fields
    assert list(declared) == ["count", "note", "outer"]
    assert isinstance(declared["count"], fields.Integer)
    assert declared["count"].required
    assert isinstance(declared["note"], fields.String)
    assert not declared["note"].required
    assert declared["note"].metadata == {"description": "a note"}
    outer = declared["outer"]
    assert isinstance(outer, fields.Nested)
    assert outer.required
    assert outer.nested is schema_from_typeddict(Outer)
    assert not any(
        field.required for field in schema_from_typeddict(Outer)._declared_fields.values()
    )
    assert schema_from_typeddict(Outer).__doc__ == "An outer shape."
    value = {"count": 1, "outer": {"names": ["a"], "inner": {"k": {"flag": True}}, "ratio": 0.5}}
    assert schema().load(value) == value
    assert schema().validate({"count": "x", "outer": {"inner": {"k": {}}}}) == {
        "count": ["Not a valid integer."],
        "outer": {"inner": {"k": {"value": {"flag": ["Missing data for required field."]}}}},
    }


def test_inherited_keys_keep_their_totality() -> None:
    declared = schema_from_typeddict(Sub)._declared_fields
    assert {name for name, field in declared.items() if field.required} == {"must"}
    assert set(declared) == {"names", "inner", "ratio", "must"}


def test_what_it_cannot_derive_is_refused() -> None:
    class Odd(TypedDict):
        when: bytes

    with pytest.raises(TypeError):
        schema_from_typeddict(Odd)
    with pytest.raises(TypeError):
        schema_from_typeddict(int)

    class Fresh(TypedDict):
        flag: bool

    with pytest.raises(TypeError, match="no key"):
        schema_from_typeddict(Fresh, descriptions={"flagg": "typo"})
    schema_from_typeddict(Fresh)
    with pytest.raises(TypeError, match="already"):
        schema_from_typeddict(Fresh, descriptions={"flag": "late"})


def test_the_stats_schemas_are_the_stats_shapes() -> None:
    shape = {*Stats.__annotations__, *AdminStats.__annotations__}
    assert set(StatsSchema._declared_fields) == shape
    assert set(NodeStatsSchema._declared_fields) == set(NodeStats.__annotations__)
    required = {name for name, field in StatsSchema._declared_fields.items() if field.required}
    assert required == shape - {"node", "broker", "undelivered", "nodes"}
    nodes = StatsSchema._declared_fields["nodes"]
    assert isinstance(nodes, fields.Dict)
    assert isinstance(nodes.value_field, fields.Nested)
    assert nodes.value_field.nested is NodeStatsSchema


def test_a_hubs_stats_validate_against_the_schema() -> None:
    stats: AdminStats = {
        **WebSocketManager(heartbeat=None).get_stats(),
        "roomCount": 0,
        "memberships": 0,
    }
    assert StatsSchema().validate(dict(stats)) == {}
    assert StatsSchema().dump(stats) == stats
    node: NodeStats = {
        "connections": 1,
        "rooms": 2,
        "messagesIn": 3,
        "messagesOut": 4,
        "bytesOut": 5,
        "undelivered": 0,
        "uptime": 1.5,
        "self": True,
    }
    clustered: AdminStats = {
        **stats,
        "node": "n1",
        "broker": "up",
        "undelivered": 0,
        "nodes": {"n1": node},
    }
    assert StatsSchema().validate(dict(clustered)) == {}
    assert StatsSchema().dump(clustered) == clustered
