"""``parse`` builds plainly valid messages without marshmallow, to the schemas' result.

The reference below is the schema path alone: load with the message type's schema, then
build the message. ``parse`` must agree with it on every generated message: the same
message when valid, the same error when not.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from lucent_ws import jsoncodec, protocol
from lucent_ws.errors import ProtocolError
from lucent_ws.protocol import (
    MAX_PAYLOAD_DEPTH,
    MAX_ROOM_LENGTH,
    BroadcastSchema,
    JoinSchema,
    LeaveSchema,
    PingSchema,
    PongSchema,
)

SCHEMAS = {
    "join": JoinSchema(),
    "leave": LeaveSchema(),
    "broadcast": BroadcastSchema(),
    "ping": PingSchema(),
    "pong": PongSchema(),
}

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


rooms = (
    st.sampled_from(["", "lobby", "a" * MAX_ROOM_LENGTH, "a" * (MAX_ROOM_LENGTH + 1), "a\tb"])
    | st.text(max_size=MAX_ROOM_LENGTH + 2)
    | values
)
payloads = values | st.sampled_from([_nested(MAX_PAYLOAD_DEPTH), _nested(MAX_PAYLOAD_DEPTH + 1)])
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(SCHEMAS))},
    optional={
        "room": rooms,
        "payload": payloads,
        "ref": st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
        "extra": values,
    },
)


def _by_schema(data: dict[str, Any]) -> object:
    """The message the schema path gives, or the text of its error."""
    schema = SCHEMAS[data["type"]]
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        return f"invalid: {sorted(exc.messages)}"
    return schema.message_class(**loaded, ref=data.get("ref"))


def _by_parse(data: dict[str, Any]) -> object:
    try:
        return protocol.parse(jsoncodec.dumps(data))
    except ProtocolError as exc:
        fields = sorted(part.split(": ", 1)[0] for part in exc.message.split("; "))
        return f"invalid: {fields}" if exc.code == "invalid_message" else exc.code


@settings(max_examples=1500, deadline=None)
@given(messages)
def test_parse_agrees_with_the_schemas(data: dict[str, Any]) -> None:
    assert _by_parse(data) == _by_schema(data)


def test_the_generator_reaches_both_outcomes() -> None:
    seen: set[bool] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(messages)
    def sample(data: dict[str, Any]) -> None:
        seen.add(isinstance(_by_schema(data), str))

    sample()
    assert seen == {True, False}
