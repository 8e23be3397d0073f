"""Small units: message parsing, CORS (the push URL policy: test_push.py)."""

from __future__ import annotations

import pytest
from a2a.types import Message, Part, Role
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from a2a_helpers import in_process
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Value

from aipartnerupflow.api.convert import from_value, parse_request, to_value


def _message(*parts: Part, context_id: str = "") -> Message:
    return Message(role=Role.ROLE_USER, message_id="m", parts=list(parts), context_id=context_id)


def test_parse_request_shapes() -> None:
    tasks = [{"name": "a", "inputs": {"n": 3, "x": 1.5}}]
    parsed = parse_request(_message(Part(data=ParseDict({"tasks": tasks}, Value()))), 10)
    assert parsed == {"tasks": tasks}  # integral numbers come back as ints
    assert isinstance(parsed["tasks"][0]["inputs"]["n"], int)
    rerun = parse_request(
        _message(Part(data=ParseDict({"rerun": "failed"}, Value())), context_id="root"), 10
    )
    assert rerun == {"rerun": "failed"}
    with pytest.raises(ContentTypeNotSupportedError):
        parse_request(_message(Part(text="hi")), 10)
    with pytest.raises(ContentTypeNotSupportedError):
        parse_request(
            _message(Part(text="hi"), Part(data=ParseDict({"tasks": tasks}, Value()))), 10
        )
    with pytest.raises(InvalidParamsError):
        parse_request(
            _message(Part(data=ParseDict({"rerun": "sometimes"}, Value())), context_id="root"), 10
        )
    with pytest.raises(InvalidParamsError):
        parse_request(_message(Part(data=ParseDict({"tasks": tasks * 3}, Value()))), 2)


def test_values_round_trip() -> None:
    data = {"a": [1, 2.5, None, True, "s"], "b": {"c": {}}}
    assert from_value(to_value(data)) == data
    assert from_value(to_value(float("nan"))) == "nan"
    assert from_value(to_value(object)) == str(object)


async def test_cors_allows_only_listed_origins() -> None:
    async with in_process(cors_origins="https://ui.example") as server:
        ok = await server.http.options(
            "/", headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}
        )
        bad = await server.http.options(
            "/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
    assert ok.headers["access-control-allow-origin"] == "https://ui.example"
    assert "access-control-allow-origin" not in bad.headers
