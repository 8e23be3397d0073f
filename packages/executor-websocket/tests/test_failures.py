"""Every failure fails the task with a reason, permanent or retryable as documented."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    InputValidationError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.extensions.websocket import WebSocketExecutor

from .conftest import WsServer


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await WebSocketExecutor().execute(inputs)


def script(**steps: Any) -> str:
    return json.dumps(steps)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retryable() -> None:
    port = free_port()
    with pytest.raises(RetryableError) as info:
        await run({"url": f"ws://127.0.0.1:{port}/x"})
    assert str(info.value) == (
        f"cannot open ws://127.0.0.1:{port}/x: cannot connect to '127.0.0.1' port {port}: "
        "Connection refused"
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_handshake_rejected_with_4xx_is_permanent(ws_server: WsServer, status: int) -> None:
    with pytest.raises(PermanentError) as info:
        await run({"url": ws_server.url(f"/status/{status}")})
    assert not isinstance(info.value, RetryableError)
    assert f"rejected the WebSocket handshake with HTTP {status}" in str(info.value)
    assert "nope, not now" in str(info.value)  # the start of the body says why


async def test_handshake_401_hints_at_the_credentials(ws_server: WsServer) -> None:
    with pytest.raises(PermanentError, match=r"HTTP 401 .*check the credentials"):
        await run({"url": ws_server.url("/auth"), "token": "wrong-token"})


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_handshake_5xx_and_429_are_retryable_with_retry_after(
    ws_server: WsServer, status: int
) -> None:
    with pytest.raises(RetryableError) as info:
        await run({"url": ws_server.url(f"/status/{status}")})
    assert f"HTTP {status}" in str(info.value)
    assert info.value.retry_after == 7.0


async def test_redirects_are_not_followed(ws_server: WsServer) -> None:
    with pytest.raises(PermanentError) as info:
        await run({"url": ws_server.url("/redirect")})
    assert "redirect (HTTP 302 to /echo); redirects are not followed" in str(info.value)
    assert ws_server.handshakes == 1  # no second connection


async def test_not_a_websocket_server() -> None:
    """A TCP server that answers garbage: the handshake breaks off (retryable)."""
    import asyncio

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RetryableError, match=r"handshake with ws://127\.0\.0\.1:\d+/ broke"):
            await run({"url": f"ws://127.0.0.1:{port}/"})
    finally:
        server.close()
        await server.wait_closed()


async def test_timeout_waiting_on_a_slow_server(ws_server: WsServer) -> None:
    with pytest.raises(RetryableError) as info:
        await run({"url": ws_server.url("/slow"), "message": "x", "timeout": 0.3})
    assert str(info.value) == (
        f"timed out after 0.3s waiting for 1 message from {ws_server.url('/slow')} (received 0 "
        "messages; raise input 'timeout' if the server is slow)"
    )
    seen = ws_server.connections[0]
    await seen.closed.wait()
    assert (seen.close_code, seen.close_reason) == (1001, "timed out")  # closed, not left open


async def test_timeout_counts_what_arrived(ws_server: WsServer) -> None:
    with pytest.raises(RetryableError, match=r"waiting for 3 messages .*\(received 2 messages;"):
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=["a", "b"]),
                "wait_for": {"messages": 3},
                "timeout": 0.3,
            }
        )


async def test_abrupt_close_is_retryable(ws_server: WsServer) -> None:
    with pytest.raises(RetryableError) as info:
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=["a"], abort=True),
                "wait_for": {"messages": 2},
            }
        )
    assert "was lost (no close frame: 1006) while the task waited for 2 messages (received 1" in (
        str(info.value)
    )


@pytest.mark.parametrize("code", [1011, 1012, 1013, 1014])
async def test_server_error_close_is_retryable(ws_server: WsServer, code: int) -> None:
    with pytest.raises(RetryableError, match=f"closed the connection with {code} 'oops'"):
        await run({"url": ws_server.url("/script"), "message": script(close=[code, "oops"])})


@pytest.mark.parametrize("wait_for", [{"messages": 2}, {"match": {"done": True}}])
async def test_normal_close_before_the_awaited_messages_is_permanent(
    ws_server: WsServer, wait_for: dict[str, Any]
) -> None:
    with pytest.raises(PermanentError) as info:
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=[{"done": False}], close=[1000, "bye"]),
                "wait_for": wait_for,
            }
        )
    assert not isinstance(info.value, RetryableError)
    assert "closed the connection with 1000 'bye' while the task waited for" in str(info.value)
    assert "(received 1 message)" in str(info.value)


@pytest.mark.parametrize("code", [1008, 4000])
async def test_error_close_while_waiting_for_close_is_permanent(
    ws_server: WsServer, code: int
) -> None:
    with pytest.raises(PermanentError, match=f"closed the connection with {code} 'go away'"):
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(close=[code, "go away"]),
                "wait_for": {"close": True},
            }
        )


async def test_message_too_large_is_permanent_and_closes_with_1009(ws_server: WsServer) -> None:
    with pytest.raises(PermanentError) as info:
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=["small"], send_big=2000),
                "wait_for": {"messages": 2},
                "max_message_bytes": 1000,
            }
        )
    assert str(info.value) == (
        f"{ws_server.url('/script')} sent a message larger than 1000 bytes (received 1 message "
        "before it); raise input 'max_message_bytes' (at most "
        "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGE_BYTES)"
    )
    seen = ws_server.connections[0]
    await seen.closed.wait()
    assert seen.close_code == 1009


async def test_operator_ceiling_on_message_size_wins(ws_server: WsServer, set_env: Any) -> None:
    set_env(AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGE_BYTES="500")
    with pytest.raises(PermanentError, match="larger than 500 bytes"):
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send_big=600),
                "max_message_bytes": 10_000,  # cannot raise the operator's limit
            }
        )


async def test_more_messages_than_allowed(ws_server: WsServer) -> None:
    with pytest.raises(
        PermanentError,
        match=r"sent more than 2 messages while the task waited "
        r"for the server to close",
    ):
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=["a", "b", "c"]),
                "wait_for": {"close": True},
                "max_messages": 2,
            }
        )


async def test_more_bytes_in_all_than_allowed(ws_server: WsServer, set_env: Any) -> None:
    set_env(AIPARTNERUPFLOW_WEBSOCKET_MAX_TOTAL_BYTES="2500")
    with pytest.raises(PermanentError, match="sent more than 2500 bytes in all"):
        await run(
            {
                "url": ws_server.url("/script"),
                "message": script(send=["x" * 1000] * 3),
                "wait_for": {"messages": 3},
            }
        )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"url": "http://127.0.0.1/"}, "must be an absolute ws:// or wss:// URL"),
        ({"url": "ws:///nohost"}, "must be an absolute ws:// or wss:// URL"),
        ({"url": "ws://[::1/"}, "input 'url' is not a URL"),
        ({"url": "ws://127.0.0.1/", "timeout": float("nan")}, "'timeout' must be a positive"),
        ({"url": "ws://127.0.0.1/", "timeout": float("inf")}, "'timeout'"),
        ({"url": "ws://127.0.0.1/", "message": {"x": float("nan")}}, "'message' holds NaN"),
        ({"url": "ws://127.0.0.1/", "messages": [1, [float("inf")]]}, "'messages[1]' holds NaN"),
        ({"url": "ws://127.0.0.1/", "message": "a", "messages": ["b"]}, "not both"),
        ({"url": "ws://127.0.0.1/", "headers": {"X-A": "a\r\nX-B: b"}}, "line break or NUL"),
        ({"url": "ws://127.0.0.1/", "headers": {"X-A": "a\x00"}}, "line break or NUL"),
        ({"url": "ws://127.0.0.1/", "headers": {"Bad Name": "v"}}, "input 'headers'"),
        ({"url": "ws://127.0.0.1/", "headers": {"Host": "evil"}}, "set by the handshake itself"),
        (
            {"url": "ws://127.0.0.1/", "headers": {"Sec-WebSocket-Protocol": "x"}},
            "use the subprotocols input",
        ),
        ({"url": "ws://127.0.0.1/", "token": "a", "token_env": "B"}, "not both"),
        (
            {"url": "ws://u:p@127.0.0.1/", "token": "abcd"},
            "more than one Authorization header",
        ),
        ({"url": "ws://127.0.0.1/", "wait_for": {"messages": 2000}}, "more than the limit of 1000"),
        ({"url": "ws://127.0.0.1/", "wait_for": {"messages": 5}, "max_messages": 3}, "limit of 3"),
        ({"url": "ws://127.0.0.1/", "wait_for": {"close": False}}, "'wait_for.close'"),
        ({"url": "ws://127.0.0.1/", "wait_for": {"messages": 1, "close": True}}, "'wait_for'"),
        (
            {"url": "ws://127.0.0.1/", "wait_for": {"close": True}, "wait_response": False},
            "not both",
        ),
        ({"url": "ws://127.0.0.1/", "messages": list(range(10_001))}, "input 'messages'"),
        ({"url": "ws://127.0.0.1/", "max_message_bytes": 0}, "'max_message_bytes'"),
    ],
)
async def test_bad_inputs_are_refused_before_connecting(
    inputs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputValidationError) as info:
        await run(inputs)
    assert message in str(info.value)
    assert str(info.value).startswith("websocket_executor inputs: ")


async def test_deeply_nested_match_is_refused() -> None:
    match: dict[str, Any] = {"a": 1}
    for _ in range(40):
        match = {"a": match}
    with pytest.raises(InputValidationError, match="nests deeper than 32 levels"):
        await run({"url": "ws://127.0.0.1/", "wait_for": {"match": match}})


async def test_failures_fail_the_task_with_the_reason(ws_server: WsServer, run_tree: Any) -> None:
    tree = await run_tree(
        [
            {
                "id": "rejected",
                "name": "rejected",
                "schemas": {"method": "websocket_executor"},
                "inputs": {"url": ws_server.url("/status/404")},
            },
            {
                "id": "slow",
                "name": "slow",
                "parent_id": "rejected",
                "schemas": {"method": "websocket_executor"},
                "inputs": {"url": ws_server.url("/slow"), "timeout": 0.2},
            },
            {
                "id": "bad",
                "name": "bad",
                "parent_id": "rejected",
                "schemas": {"method": "websocket_executor"},
                "inputs": {"url": ws_server.url("/echo"), "headers": {"Host": "x"}},
            },
        ]
    )
    assert tree.task("rejected").status == "failed"
    assert "rejected the WebSocket handshake with HTTP 404" in (tree.task("rejected").error or "")
    assert tree.task("slow").status == "failed"
    assert "timed out after 0.2s waiting for 1 message" in (tree.task("slow").error or "")
    assert tree.task("bad").status == "failed"
    assert "the Host header is set by the handshake itself" in (tree.task("bad").error or "")
