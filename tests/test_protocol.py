"""Wire protocol unit tests: parsing and encoding, no server."""

from __future__ import annotations

from typing import Any

import pytest

from lucent_ws import jsoncodec, protocol, replies
from lucent_ws.errors import ProtocolError
from lucent_ws.protocol import Broadcast, Join, Leave, Ping, Pong


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"join","room":"posts"}', Join("posts")),
        ('{"type":"join","room":"posts","ref":7,"extra":true}', Join("posts", ref=7)),
        ('{"type":"leave","room":"posts","ref":"a"}', Leave("posts", "a")),
        ('{"type":"broadcast","room":"r","payload":{"a":[1]}}', Broadcast("r", {"a": [1]})),
        ('{"type":"broadcast","room":"r","payload":null}', Broadcast("r", None)),
        ('{"type":"ping","ref":1}', Ping(1)),
        ('{"type":"pong"}', Pong()),
        ('{"type":"join","room":"' + "x" * 128 + '"}', Join("x" * 128)),
        ('{"type":"ping","ref":"' + "r" * 64 + '"}', Ping("r" * 64)),
    ],
)
def test_parse_valid(text: str, expected: protocol.ClientMessage) -> None:
    assert protocol.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "code", "ref"),
    [
        ("not json", "invalid_json", None),
        ("{", "invalid_json", None),
        ('{"type":"ping"} trailing', "invalid_json", None),
        ("NaN", "invalid_json", None),
        ("[" * 100_000, "invalid_json", None),
        ("[]", "invalid_message", None),
        ('"join"', "invalid_message", None),
        ("null", "invalid_message", None),
        ('{"room":"r"}', "invalid_message", None),
        ('{"type":5,"ref":2}', "invalid_message", 2),
        ('{"type":"join","ref":true}', "invalid_message", None),
        ('{"type":"join","ref":1.5}', "invalid_message", None),
        ('{"type":"join","ref":"' + "r" * 65 + '"}', "invalid_message", None),
        ('{"type":"join","ref":3}', "invalid_message", 3),
        ('{"type":"join","room":""}', "invalid_message", None),
        ('{"type":"join","room":5}', "invalid_message", None),
        ('{"type":"join","room":"' + "x" * 129 + '"}', "invalid_message", None),
        ('{"type":"join","room":"a\\u0000b"}', "invalid_message", None),
        ('{"type":"join","room":"a\\u009fb"}', "invalid_message", None),
        ('{"type":"leave"}', "invalid_message", None),
        ('{"type":"broadcast","room":"r"}', "invalid_message", None),
        ('{"type":"broadcast","payload":1}', "invalid_message", None),
        ('{"type":"subscribe","ref":"s"}', "unknown_type", "s"),
    ],
)
def test_parse_errors(text: str, code: str, ref: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse(text)
    assert info.value.code == code
    assert info.value.ref == ref


def test_unknown_type_message_names_the_type() -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse('{"type":"subscribe"}')
    assert info.value.message == "Unknown type: subscribe"
    with pytest.raises(ProtocolError) as info:
        protocol.parse('{"type":"' + "z" * 1000 + '"}')
    assert len(info.value.message) < 100


def test_encoders_put_type_first_and_echo_ref() -> None:
    assert replies.encode_joined("r", 1) == b'{"type":"joined","room":"r","ref":1}'
    assert replies.encode_left("r") == b'{"type":"left","room":"r"}'
    assert replies.encode_pong("x") == b'{"type":"pong","ref":"x"}'
    assert replies.encode_ack(3, 2) == b'{"type":"ack","ref":3,"delivered":2}'
    assert jsoncodec.loads(replies.encode_error("forbidden", "Access denied to room 'r'", 9)) == {
        "type": "error",
        "code": "forbidden",
        "message": "Access denied to room 'r'",
        "ref": 9,
    }
    assert jsoncodec.loads(replies.encode_message("r", "id1", [1, {"a": None}])) == {
        "type": "message",
        "room": "r",
        "from": "id1",
        "payload": [1, {"a": None}],
    }


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, -0.0, 10**30], "c": "é\u2028\x00", "d": None, "e": True},
        {1: "int key", "nan": float("nan"), "inf": [float("inf")]},
        [],
        "",
    ],
)
def test_json_backends_agree(value: Any) -> None:
    assert jsoncodec.std_loads(jsoncodec.dumps(value)) == jsoncodec.std_loads(
        jsoncodec.std_dumps(value)
    )


def test_json_refuses_what_is_not_json() -> None:
    for encode in (jsoncodec.dumps, jsoncodec.std_dumps):
        with pytest.raises(TypeError):
            encode(object())
        circular: list[Any] = []
        circular.append(circular)
        with pytest.raises(TypeError):
            encode(circular)


def test_payload_depth_is_capped_deterministically() -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    limit = protocol.MAX_PAYLOAD_DEPTH
    ok = protocol.parse(f'{{"type":"broadcast","room":"r","payload":{nested(limit)}}}')
    assert isinstance(ok, Broadcast)
    jsoncodec.dumps(ok.payload)  # what passes the parser can always be relayed
    with pytest.raises(ProtocolError) as info:
        protocol.parse(f'{{"type":"broadcast","room":"r","payload":{nested(limit + 1)},"ref":1}}')
    assert info.value.code == "invalid_message"
    assert info.value.ref == 1
    deep_object = '{"a":' * (limit + 1) + "1" + "}" * (limit + 1)
    with pytest.raises(ProtocolError):
        protocol.parse(f'{{"type":"broadcast","room":"r","payload":{deep_object}}}')
