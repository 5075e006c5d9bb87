"""The request bodies' fast path agrees with marshmallow on every JSON body.

For bodies decoded from JSON the fast path is exact: it loads every body marshmallow
accepts, to the same result, and refuses every body marshmallow refuses (which then
goes to marshmallow for its error messages).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from lucent_ws.admin.schemas import BroadcastRequestSchema, QuickSchema, SendRequestSchema
from lucent_ws.protocol import MAX_ROOM_LENGTH

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# Names near the limits: empty, at and over the length limit, control characters.
names = st.sampled_from(
    ["", "lobby", "a" * MAX_ROOM_LENGTH, "a" * (MAX_ROOM_LENGTH + 1), "x\ny", "\x7f", "é"]
) | st.text(max_size=MAX_ROOM_LENGTH + 2)
field_values = names | json_values | st.lists(names | json_values, max_size=3)
# Mostly near-valid shapes (so both outcomes are common), and any JSON value besides.
any_bodies = (
    st.dictionaries(
        st.sampled_from(["room", "payload", "exclude", "id", "other"]), field_values, max_size=4
    )
    | json_values
)
broadcast_bodies = (
    st.fixed_dictionaries(
        {"payload": json_values},
        optional={"room": names | field_values, "exclude": st.lists(names) | field_values},
    )
    | st.fixed_dictionaries({"room": names}, optional={"other": json_values})
    | any_bodies
)
send_bodies = (
    st.fixed_dictionaries(
        {"id": names | field_values, "payload": json_values}, optional={"other": json_values}
    )
    | st.fixed_dictionaries({"id": names})
    | any_bodies
)


def _load(schema: QuickSchema, data: Any) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError:
        return None
    return loaded


@settings(max_examples=800, deadline=None)
@given(data=broadcast_bodies)
def test_broadcast_fast_path_returns_what_load_returns(data: Any) -> None:
    schema = BroadcastRequestSchema()
    assert schema.quick_load(data) == _load(schema, data)


@settings(max_examples=800, deadline=None)
@given(data=send_bodies)
def test_send_fast_path_returns_what_load_returns(data: Any) -> None:
    schema = SendRequestSchema()
    assert schema.quick_load(data) == _load(schema, data)


@pytest.mark.parametrize(
    ("schema", "data"),
    [
        (BroadcastRequestSchema(), {"room": "lobby", "payload": {"text": "hi"}}),
        (BroadcastRequestSchema(), {"payload": None}),
        (BroadcastRequestSchema(), {"room": "lobby", "payload": 1, "exclude": ["a", "b"]}),
        (SendRequestSchema(), {"id": "abc", "payload": [1, 2]}),
    ],
)
def test_plain_bodies_take_the_fast_path(schema: QuickSchema, data: dict[str, Any]) -> None:
    quick = schema.quick_load(data)
    assert quick is not None
    assert quick == schema.load(data)


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
def test_invalid_bodies_are_left_to_marshmallow(schema: QuickSchema, data: Any) -> None:
    assert schema.quick_load(data) is None
    with pytest.raises(ValidationError):
        schema.load(data)
