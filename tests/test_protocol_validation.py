"""The wire protocol's one validator: error texts clients see, and generated messages.

The texts below are the ones clients received when marshmallow worded them; the
generated messages are built field by field from valid values and from faults whose
wording is known by construction, so the expected outcome never comes from the parser.
"""

from __future__ import annotations

import json
import string
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lucent_ws import jsoncodec, protocol, replies
from lucent_ws.errors import ProtocolError
from lucent_ws.protocol import (
    MAX_PAYLOAD_DEPTH,
    MAX_ROOM_LENGTH,
    Broadcast,
    ErrorCode,
    History,
    Join,
    Leave,
    Ping,
    Pong,
    Presence,
)

from .conftest import HubFactory, Peer, open_peer

MISSING = "Missing data for required field."
NULL = "Field may not be null."
NOT_STRING = "Not a valid string."
LENGTH = f"Length must be between 1 and {MAX_ROOM_LENGTH}."
CONTROL = "Must not contain control characters."
TOO_DEEP = f"Nested deeper than {MAX_PAYLOAD_DEPTH} levels."


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


TEXTS = [
    ({"type": "join"}, f"room: {MISSING}"),
    ({"type": "join", "room": None}, f"room: {NULL}"),
    ({"type": "join", "room": 5}, f"room: {NOT_STRING}"),
    ({"type": "leave", "room": ["a"]}, f"room: {NOT_STRING}"),
    ({"type": "leave", "room": True}, f"room: {NOT_STRING}"),
    ({"type": "join", "room": ""}, f"room: {LENGTH}"),
    ({"type": "join", "room": "x" * 129}, f"room: {LENGTH}"),
    ({"type": "join", "room": "a\x00b"}, f"room: {CONTROL}"),
    ({"type": "join", "room": "\x9f"}, f"room: {CONTROL}"),
    ({"type": "join", "room": "\n" * 130}, f"room: {LENGTH} {CONTROL}"),
    ({"type": "broadcast"}, f"room: {MISSING}; payload: {MISSING}"),
    ({"type": "broadcast", "room": "r"}, f"payload: {MISSING}"),
    ({"type": "broadcast", "payload": 1}, f"room: {MISSING}"),
    ({"type": "broadcast", "room": "r", "payload": nested(129)}, f"payload: {TOO_DEEP}"),
    ({"type": "broadcast", "room": "", "payload": {"a": nested(128)}},
     f"room: {LENGTH}; payload: {TOO_DEEP}"),
    ({"room": "r"}, "type: Missing or not a string."),
    ({"type": 5}, "type: Missing or not a string."),
    ({"type": "ping", "ref": 1.5}, "ref must be an integer or a string of at most 64 characters"),
    ({"type": "subscribe"}, "Unknown type: subscribe"),
    ([1, 2], "Message must be a JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "text"), TEXTS)
def test_error_texts(message: Any, text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse(json.dumps(message))
    assert info.value.message == text
    unknown = text.startswith("Unknown type")
    assert info.value.code == (ErrorCode.UNKNOWN_TYPE if unknown else ErrorCode.INVALID_MESSAGE)


async def test_error_texts_reach_the_client(make_hub: HubFactory, peers: list[Peer]) -> None:
    client = await make_hub()
    peers.append(peer := await open_peer(client))
    for ref, (message, text) in enumerate(TEXTS):
        frame = (
            {**message, "ref": ref}
            if isinstance(message, dict) and "ref" not in message
            else message
        )
        await peer.ws.send_str(json.dumps(frame))
        reply = await peer.recv()
        assert reply["type"] == "error"
        assert reply["message"] == text
    print(f"{len(TEXTS)} error texts received as documented")


# --- generated messages -----------------------------------------------------------

ABSENT = object()
# (value, problem): problem is None for a valid value, else the text the field must get.
Field = tuple[Any, str | None]

safe_chars = st.characters(blacklist_categories=["Cc", "Cs"])
control_chars = st.sampled_from([chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def with_control(draw: st.DrawFn, min_size: int, max_size: int) -> str:
    text = draw(st.text(safe_chars, min_size=min_size - 1, max_size=max_size - 1))
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(control_chars) + text[at:]


valid_rooms: st.SearchStrategy[Field] = st.tuples(
    st.text(safe_chars, min_size=1, max_size=MAX_ROOM_LENGTH), st.none()
)
invalid_rooms: st.SearchStrategy[Field] = st.one_of(
    st.just((ABSENT, MISSING)),
    st.just((None, NULL)),
    st.tuples(
        st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.lists(st.text(max_size=2)),
        st.just(NOT_STRING),
    ),
    st.tuples(st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.just(NOT_STRING)),
    st.just(("", LENGTH)),
    st.tuples(st.text(safe_chars, min_size=MAX_ROOM_LENGTH + 1, max_size=200), st.just(LENGTH)),
    st.tuples(with_control(1, MAX_ROOM_LENGTH), st.just(CONTROL)),
    st.tuples(with_control(MAX_ROOM_LENGTH + 1, 200), st.just(f"{LENGTH} {CONTROL}")),
)
valid_payloads: st.SearchStrategy[Field] = st.tuples(
    json_values
    | st.sampled_from([nested(MAX_PAYLOAD_DEPTH), {"k": nested(MAX_PAYLOAD_DEPTH - 1)}]),
    st.none(),
)
invalid_payloads: st.SearchStrategy[Field] = st.one_of(
    st.just((ABSENT, MISSING)),
    st.sampled_from([nested(MAX_PAYLOAD_DEPTH + 1), {"k": [nested(MAX_PAYLOAD_DEPTH)]}]).map(
        lambda deep: (deep, TOO_DEEP)
    ),
)
# The fields each type defines, in declaration order, and the class it parses to.
SHAPES: dict[str, tuple[type[Any], tuple[tuple[str, Any, Any], ...]]] = {
    "join": (Join, (("room", valid_rooms, invalid_rooms),)),
    "leave": (Leave, (("room", valid_rooms, invalid_rooms),)),
    "broadcast": (
        Broadcast,
        (("room", valid_rooms, invalid_rooms), ("payload", valid_payloads, invalid_payloads)),
    ),
    "ping": (Ping, ()),
    "pong": (Pong, ()),
    "presence": (Presence, (("room", valid_rooms, invalid_rooms),)),
    "history": (History, (("room", valid_rooms, invalid_rooms),)),
}
refs = st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=64)
# Keys no message type defines ("x" + lowercase letters: never "room" or "payload").
extras = st.dictionaries(st.text(string.ascii_lowercase, max_size=8).map("x".__add__), json_values)


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], Any, list[str]]:
    """A message, the dataclass it must parse to (or None), and the problems it must get."""
    kind = draw(st.sampled_from(sorted(SHAPES)))
    cls, fields = SHAPES[kind]
    data: dict[str, Any] = draw(extras)  # fields a type does not define are ignored
    data["type"] = kind
    values: list[Any] = []
    problems: list[str] = []
    for name, valid, invalid in fields:
        value, problem = draw(valid | invalid)
        if value is not ABSENT:
            data[name] = value
        values.append(value)
        if problem is not None:
            problems.append(f"{name}: {problem}")
    ref = draw(refs)
    if ref is not None:
        data["ref"] = ref
    return data, None if problems else cls(*values, ref=ref), problems


@settings(max_examples=1500, deadline=None)
@given(messages())
def test_generated_messages_parse_or_fail_as_built(
    case: tuple[dict[str, Any], Any, list[str]],
) -> None:
    data, expected, problems = case
    text = jsoncodec.dumps(data)
    if expected is not None:
        assert protocol.parse(text, version=2) == expected
        return
    with pytest.raises(ProtocolError) as info:
        protocol.parse(text, version=2)
    assert info.value.code == ErrorCode.INVALID_MESSAGE
    assert info.value.message == "; ".join(problems)
    assert info.value.ref == data.get("ref")


def test_the_generator_reaches_every_outcome() -> None:
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, database=None)
    @given(messages())
    def sample(case: tuple[dict[str, Any], Any, list[str]]) -> None:
        _, expected, problems = case
        seen.add("valid" if expected is not None else f"{len(problems)} problems")
        seen.update(problem.split(": ", 1)[1] for problem in problems)

    sample()
    assert {"valid", "1 problems", "2 problems", MISSING, NULL, NOT_STRING} <= seen
    assert {LENGTH, CONTROL, f"{LENGTH} {CONTROL}", TOO_DEEP} <= seen


def test_every_message_type_is_declared_once() -> None:
    assert dict(protocol.MESSAGE_TYPES) == {kind: cls for kind, (cls, _) in SHAPES.items()}


def test_check_room_lists_every_problem() -> None:
    assert protocol.check_room("lobby") == ()
    assert protocol.check_room("x" * MAX_ROOM_LENGTH) == ()
    assert protocol.check_room("") == (LENGTH,)
    assert protocol.check_room("a\tb") == (CONTROL,)
    assert protocol.check_room("\t" * (MAX_ROOM_LENGTH + 1)) == (LENGTH, CONTROL)


# --- error codes --------------------------------------------------------------------


def test_error_codes_keep_their_values() -> None:
    assert {code.name: str(code) for code in ErrorCode} == {
        "INVALID_JSON": "invalid_json",
        "INVALID_MESSAGE": "invalid_message",
        "UNKNOWN_TYPE": "unknown_type",
        "FORBIDDEN": "forbidden",
        "NOT_MEMBER": "not_member",
        "TOO_MANY_ROOMS": "too_many_rooms",
        "RATE_LIMITED": "rate_limited",
        "UNSUPPORTED_DATA": "unsupported_data",
        "INTERNAL_ERROR": "internal_error",
        "PUBLISH_FORBIDDEN": "publish_forbidden",
        "ROOM_FULL": "room_full",
        "PRESENCE_DISABLED": "presence_disabled",
        "HISTORY_DISABLED": "history_disabled",
        "UNAVAILABLE": "unavailable",
    }


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_codes_encode_as_plain_strings(code: ErrorCode) -> None:
    plain = code.value
    assert type(plain) is str
    assert orjson.dumps({"code": code}) == orjson.dumps({"code": plain})
    assert json.dumps({"code": code}) == json.dumps({"code": plain})
    for dumps in (jsoncodec.dumps, jsoncodec.std_dumps):
        assert dumps({"code": code}) == f'{{"code":"{plain}"}}'.encode()
    assert replies.encode_error(code, "m", 1) == replies.encode_error(plain, "m", 1)
    assert f"{code}" == plain
