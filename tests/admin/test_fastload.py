"""Fast loaders derived from the request schemas: what they load, marshmallow loads too.

A fast loader answers None for anything it does not plainly accept, and the body then
goes to marshmallow, so the property checked on generated bodies is one-sided by
design: when it loads a body, marshmallow loads that body to the same result. Valid
bodies built field by field must all take the fast path, or it would save nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load, validate

from lucent_ws.admin.fastload import FastLoader, fast_loader
from lucent_ws.admin.schemas import BroadcastRequestSchema, SendRequestSchema, room_field
from lucent_ws.protocol import MAX_ROOM_LENGTH

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
names = st.sampled_from(
    ["", "lobby", "a" * MAX_ROOM_LENGTH, "a" * (MAX_ROOM_LENGTH + 1), "x\ny", "\x7f", "é"]
) | st.text(max_size=MAX_ROOM_LENGTH + 2)
field_values = names | json_values | st.lists(names | json_values, max_size=3)
any_bodies = (
    st.dictionaries(
        st.sampled_from(["room", "payload", "exclude", "id", "other"]), field_values, max_size=4
    )
    | json_values
)
good_rooms = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=20)
valid_broadcasts = st.fixed_dictionaries(
    {"payload": json_values}, optional={"room": good_rooms, "exclude": st.lists(st.text())}
)
valid_sends = st.fixed_dictionaries({"id": st.text(min_size=1), "payload": json_values})


def marshmallow_load(schema: Schema, data: Any) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError:
        return None
    return loaded


def loader(schema: Schema) -> FastLoader:
    load = fast_loader(schema)
    assert load is not None
    return load


@pytest.mark.parametrize(
    ("schema", "bodies"),
    [
        (BroadcastRequestSchema(), valid_broadcasts | any_bodies),
        (SendRequestSchema(), valid_sends | any_bodies),
    ],
    ids=["broadcast", "send"],
)
@settings(max_examples=800, deadline=None)
@given(data=st.data())
def test_bodies_load_as_marshmallow_loads_them(
    schema: Schema, bodies: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    body = data.draw(bodies)
    quick = loader(schema)(body)
    if quick is not None:
        assert quick == marshmallow_load(schema, body)


@settings(max_examples=300, deadline=None)
@given(broadcast=valid_broadcasts, send=valid_sends)
def test_valid_bodies_take_the_fast_path(broadcast: Any, send: Any) -> None:
    for schema, body in ((BroadcastRequestSchema(), broadcast), (SendRequestSchema(), send)):
        quick = loader(schema)(body)
        assert quick is not None, body
        assert quick == schema.load(body)


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        (BroadcastRequestSchema(), {"room": "", "payload": 1}),
        (BroadcastRequestSchema(), {"room": "a\nb", "payload": 1}),
        (BroadcastRequestSchema(), {"room": None, "payload": 1}),
        (BroadcastRequestSchema(), {"room": "lobby"}),
        (BroadcastRequestSchema(), {"room": "lobby", "payload": 1, "exclude": [1]}),
        (BroadcastRequestSchema(), {"room": "lobby", "payload": 1, "extra": True}),
        (SendRequestSchema(), {"id": "", "payload": 1}),
        (SendRequestSchema(), {"id": 5, "payload": 1}),
        (SendRequestSchema(), ["id", "payload"]),
    ],
)
def test_invalid_bodies_are_left_to_marshmallow(schema: Schema, data: Any) -> None:
    assert loader(schema)(data) is None
    with pytest.raises(ValidationError):
        schema.load(data)


def test_defaults_copies_and_unknown_keys_follow_the_schema() -> None:
    class Body(Schema):
        class Meta:
            unknown = EXCLUDE

        tags = fields.List(fields.String(validate=validate.Length(max=3)), load_default=list)
        note = fields.String(load_default="none")
        extra = fields.Raw()

    load = loader(Body())
    tags = ["a", "b"]
    loaded = load({"tags": tags, "ignored": 1})
    assert loaded == Body().load({"tags": tags, "ignored": 1}) == {"tags": tags, "note": "none"}
    assert loaded is not None
    assert loaded["tags"] is not tags
    assert load({}) == {"tags": [], "note": "none"}
    assert load({"tags": ["abcd"]}) is None  # the inner field's validator refuses it


def test_schemas_it_cannot_follow_get_no_fast_loader() -> None:
    class WithHook(Schema):
        name = fields.String()

        @post_load
        def upper(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {key: value.upper() for key, value in data.items()}

    class WithInteger(Schema):
        count = fields.Integer()

    class Including(Schema):
        class Meta:
            unknown = INCLUDE

        name = fields.String()

    for schema in (WithHook(), WithInteger(), Including(), BroadcastRequestSchema(many=True)):
        assert fast_loader(schema) is None, schema


def test_the_room_field_keeps_one_message_per_problem() -> None:
    class Body(Schema):
        room = room_field()

    with pytest.raises(ValidationError) as info:
        Body().load({"room": "\n" * (MAX_ROOM_LENGTH + 1)})
    assert info.value.messages == {
        "room": [
            f"Length must be between 1 and {MAX_ROOM_LENGTH}.",
            "Must not contain control characters.",
        ]
    }
