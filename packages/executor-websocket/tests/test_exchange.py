"""What websocket_executor sends, waits for and returns, against the loopback server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from aipartnerupflow.extensions.websocket import WebSocketExecutor
from aipartnerupflow.extensions.websocket.session import decode_message, matches

from .conftest import WsServer


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await WebSocketExecutor().execute(inputs)


def script(**steps: Any) -> str:
    return json.dumps(steps)


async def test_echo_round_trip_of_text_and_json(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/echo"),
            "messages": ["plain text", {"a": [1, 2.5, None, True]}, 7, "[1, 2]"],
            "wait_for": {"messages": 4},
        }
    )
    assert result["messages"] == ["plain text", {"a": [1, 2.5, None, True]}, 7, [1, 2]]
    assert result["message_types"] == ["text", "json", "json", "json"]
    assert result["sent"] == 4
    assert result["message_count"] == 4
    assert result["response"] == "plain text"
    assert result["success"] is True
    assert result["closed_by"] == "client"
    assert result["close_code"] == 1000
    assert result["duration_seconds"] >= 0
    seen = ws_server.connections[0]
    assert seen.received == ["plain text", '{"a":[1,2.5,null,true]}', "7", "[1, 2]"]
    await seen.closed.wait()
    assert seen.close_code == 1000  # the client closed cleanly once it had what it waited for


async def test_original_project_fields(ws_server: WsServer) -> None:
    """``message`` (a dict is JSON-encoded) and ``wait_response`` as in the original project."""
    result = await run({"url": ws_server.url("/echo"), "message": {"q": "x"}, "timeout": 5})
    assert result["response"] == {"q": "x"}
    assert result["messages"] == [{"q": "x"}]

    result = await run({"url": ws_server.url("/echo"), "message": "hi", "wait_response": False})
    assert result["messages"] == []
    assert result["response"] is None
    seen = ws_server.connections[-1]
    await seen.closed.wait()
    assert seen.received == ["hi"]


async def test_scripted_replies_are_kept_in_order(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(send=[{"n": i} for i in range(5)]),
            "wait_for": {"messages": 3},
        }
    )
    assert result["messages"] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_wait_for_the_first_matching_message(ws_server: WsServer) -> None:
    replies = [
        {"event": "progress", "pct": 50},
        {"event": "done", "job": {"id": 7, "ok": 1}},  # 1 is not true
        "done",
        {"event": "done", "job": {"id": 7, "ok": True}, "extra": "kept"},
        {"event": "after"},
    ]
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(send=replies),
            "wait_for": {"match": {"event": "done", "job": {"ok": True}}},
        }
    )
    assert result["matched"] == replies[3]
    assert result["messages"] == replies[:4]


async def test_wait_until_the_server_closes(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(send=["a", "b"], close=[1000, "all done"]),
            "wait_for": {"close": True},
        }
    )
    assert result["messages"] == ["a", "b"]
    assert result["closed_by"] == "server"
    assert (result["close_code"], result["close_reason"]) == (1000, "all done")


async def test_going_away_is_a_normal_end_when_waiting_for_the_close(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(close=[1001, "restarting"]),
            "wait_for": {"close": True},
        }
    )
    assert (result["close_code"], result["closed_by"]) == (1001, "server")


async def test_binary_messages_are_base64(ws_server: WsServer) -> None:
    raw = bytes(range(256))
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(send_binary=base64.b64encode(raw).decode()),
        }
    )
    assert result["message_types"] == ["binary"]
    assert base64.b64decode(result["messages"][0]) == raw


async def test_headers_and_subprotocols_reach_the_server(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/chat?room=1"),
            "headers": {"X-Client": "tests", "Origin": "https://app.example"},
            "subprotocols": ["chat.v1", "chat.v2"],
            "message": "hello",
        }
    )
    assert result["subprotocol"] == "chat.v2"
    seen = ws_server.connections[0]
    assert seen.headers["X-Client"] == "tests"
    assert seen.headers["Origin"] == "https://app.example"
    assert seen.headers["Sec-WebSocket-Protocol"] == "chat.v1, chat.v2"
    assert seen.subprotocol == "chat.v2"


async def test_no_subprotocol_selected_is_reported_as_null(ws_server: WsServer) -> None:
    result = await run({"url": ws_server.url("/echo"), "message": "x", "subprotocols": ["x.v1"]})
    assert result["subprotocol"] is None


async def test_zero_messages_connects_and_closes(ws_server: WsServer) -> None:
    result = await run({"url": ws_server.url("/echo"), "wait_for": {"messages": 0}})
    assert result["messages"] == [] and result["sent"] == 0
    assert len(ws_server.connections) == 1


async def test_through_the_engine(ws_server: WsServer, run_tree: Any) -> None:
    tree = await run_tree(
        [
            {
                "id": "ask",
                "name": "ask",
                "schemas": {"method": "websocket_executor"},
                "inputs": {"url": ws_server.url("/echo"), "message": {"ping": 1}},
            }
        ]
    )
    outcome = tree.task("ask")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["response"] == {"ping": 1}


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ('{"a": 1}', {"a": 1}, "json"),
        ("NaN", "NaN", "text"),  # not strict JSON: kept as text
        ('{"x": Infinity}', '{"x": Infinity}', "text"),
        ("[" * 100_000 + "]" * 100_000, "[" * 100_000 + "]" * 100_000, "text"),  # too deep
        ('"\\ud800"', '"\\ud800"', "text"),  # a lone surrogate cannot be stored
        ('"\\u00e9"', "é", "json"),
        ("1" * 5000, "1" * 5000, "text"),  # beyond Python's int digit limit
        ("not json", "not json", "text"),
        ("\x00nul", "\x00nul", "text"),
    ],
)
def test_decode_message(text: str, value: Any, kind: str) -> None:
    assert decode_message(text) == (value, kind)


async def test_hostile_replies_give_a_strict_json_result(ws_server: WsServer) -> None:
    replies = ["NaN", "[" * 50_000 + "]" * 50_000, '"\\udfff"', "\x00"]
    result = await run(
        {
            "url": ws_server.url("/script"),
            "message": script(send=replies),
            "wait_for": {"messages": 4},
        }
    )
    assert result["messages"] == replies
    json.dumps(result, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": {"b": {"c": 3, "d": 4}}}, {"a": {"b": {"c": 3}}}, True),
        ({"a": True}, {"a": 1}, False),
        ({"a": 1}, {"a": True}, False),
        ({"a": 1.0}, {"a": 1}, True),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, False),
        ([1], {"a": 1}, False),
        ({"b": 1}, {"a": None}, False),
        ({"a": None}, {"a": None}, True),
    ],
)
def test_matches(value: Any, pattern: Any, expected: bool) -> None:
    assert matches(value, pattern) is expected
