"""Secrets in headers, tokens and URLs never reach results, errors, stored rows or logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from aipartnerupflow.core.errors import InputValidationError, PermanentError
from aipartnerupflow.extensions.websocket import WebSocketExecutor

from .conftest import TOKEN, WsServer

API_KEY = "api-key-SECRET-8a7b6c5d"
PASSWORD = "pw-SECRET-0e9f8a7b"
ALL = (TOKEN, API_KEY, PASSWORD)


async def run(inputs: dict[str, Any]) -> dict[str, Any]:
    return await WebSocketExecutor().execute(inputs)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in ALL:
            assert secret not in text


async def test_a_server_echo_of_the_token_is_masked(ws_server: WsServer) -> None:
    result = await run({"url": ws_server.url("/auth"), "token": TOKEN})
    assert result["response"] == {"you_sent": "Bearer ***"}
    assert ws_server.connections[0].headers["Authorization"] == f"Bearer {TOKEN}"  # was sent
    assert_clean(json.dumps(result))


async def test_sensitive_headers_are_masked_other_headers_are_not(ws_server: WsServer) -> None:
    result = await run(
        {
            "url": ws_server.url("/script"),
            "headers": {
                "Authorization": f"Bearer {TOKEN}",
                "X-Api-Key": API_KEY,
                "X-Trace": "t-1234",
            },
            "message": json.dumps({"send": [f"echo {TOKEN} {API_KEY} t-1234"]}),
        }
    )
    assert result["response"] == "echo *** *** t-1234"
    assert_clean(json.dumps(result))


async def test_errors_and_logs_are_clean(
    ws_server: WsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentError) as info:
        await run(
            {
                "url": f"ws://user:{PASSWORD}@127.0.0.1:{ws_server.port}/status/403?token={TOKEN}",
                "headers": {"X-Api-Key": API_KEY},
            }
        )
    assert "token=***" in str(info.value)
    assert "user:" not in str(info.value)
    assert_clean(str(info.value), caplog.text)
    assert "websockets.client" in {r.name for r in caplog.records}  # logged, and scrubbed
    assert any("X-Api-Key: ***" in r.getMessage() for r in caplog.records)


async def test_userinfo_becomes_basic_auth_and_is_never_shown(ws_server: WsServer) -> None:
    result = await run(
        {"url": f"ws://user:{PASSWORD}@127.0.0.1:{ws_server.port}/echo", "message": "x"}
    )
    assert ws_server.connections[0].headers["Authorization"].startswith("Basic ")
    assert result["url"] == f"ws://127.0.0.1:{ws_server.port}/echo"
    assert_clean(json.dumps(result))


async def test_validation_errors_do_not_quote_secrets() -> None:
    with pytest.raises(InputValidationError) as info:
        await run({"url": "ws://127.0.0.1/", "headers": {"Authorization": TOKEN, "X-N": 5}})
    assert "headers.X-N" in str(info.value)
    assert_clean(str(info.value))
    with pytest.raises(InputValidationError) as info:
        await run({"url": "ws://127.0.0.1/", "headers": {"Authorization": TOKEN + "\r\nX: y"}})
    assert_clean(str(info.value))


async def test_token_env_must_be_allow_listed(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch, set_env: Any
) -> None:
    monkeypatch.setenv("WS_TEST_TOKEN", TOKEN)
    with pytest.raises(InputValidationError) as info:
        await run({"url": ws_server.url("/auth"), "token_env": "WS_TEST_TOKEN"})
    assert "environment variable 'WS_TEST_TOKEN' may not be read" in str(info.value)
    assert "AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV" in str(info.value)
    assert_clean(str(info.value))

    set_env(AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV="WS_TEST_TOKEN")
    result = await run({"url": ws_server.url("/auth"), "token_env": "WS_TEST_TOKEN"})
    assert result["response"] == {"you_sent": "Bearer ***"}

    set_env(AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV=None, AIPARTNERUPFLOW_SECRET_ENV="WS_TEST_TOKEN")
    result = await run({"url": ws_server.url("/auth"), "token_env": "WS_TEST_TOKEN"})
    assert result["response"] == {"you_sent": "Bearer ***"}


async def test_headers_env(
    ws_server: WsServer, monkeypatch: pytest.MonkeyPatch, set_env: Any
) -> None:
    monkeypatch.setenv("WS_TEST_KEY", API_KEY)
    set_env(AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV="WS_TEST_KEY")
    result = await run(
        {
            "url": ws_server.url("/script"),
            "headers_env": {"X-Custom": "WS_TEST_KEY"},  # not a credential-like name: still secret
            "message": json.dumps({"send": [API_KEY]}),
        }
    )
    assert ws_server.connections[0].headers["X-Custom"] == API_KEY
    assert result["response"] == "***"


async def test_engine_result_error_stored_row_and_logs_are_clean(
    ws_server: WsServer,
    task_manager: Any,
    monkeypatch: pytest.MonkeyPatch,
    set_env: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WS_TEST_TOKEN", TOKEN)
    set_env(AIPARTNERUPFLOW_WEBSOCKET_SECRET_ENV="WS_TEST_TOKEN")
    method = {"method": "websocket_executor"}
    tree = await task_manager.run_tasks(
        [
            {
                "id": "ok",
                "name": "ok",
                "schemas": method,
                "inputs": {"url": ws_server.url("/auth"), "token_env": "WS_TEST_TOKEN"},
            },
            {
                "id": "inline",
                "name": "inline",
                "schemas": method,
                "parent_id": "ok",
                "inputs": {
                    "url": ws_server.url("/auth"),
                    "headers": {"Authorization": f"Bearer {TOKEN}"},
                },
            },
            {
                "id": "refused",
                "name": "refused",
                "schemas": method,
                "parent_id": "ok",
                "inputs": {"url": ws_server.url("/status/401"), "token_env": "WS_TEST_TOKEN"},
            },
        ]
    )
    assert tree.task("ok").status == "completed"
    assert tree.task("ok").result["response"] == {"you_sent": "Bearer ***"}
    assert tree.task("inline").result["response"] == {"you_sent": "***"}
    assert tree.task("refused").status == "failed"
    assert "HTTP 401" in (tree.task("refused").error or "")
    assert_clean(json.dumps(tree.to_dict()), caplog.text)

    repo = task_manager.task_repository
    for task_id in ("ok", "refused"):  # secrets given by name: nothing in the whole row
        row = await repo.get_task_by_id(task_id)
        assert_clean(json.dumps(row.to_dict(), default=str))
    # Inline secrets are part of the task's own inputs (as submitted); result and error are clean.
    row = await repo.get_task_by_id("inline")
    assert_clean(json.dumps(row.result), str(row.error))
