"""websocket_executor passes the executor contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aipartnerupflow.extensions.websocket import WebSocketExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import TOKEN, WsServer


class TestWebSocketExecutorContract(ExecutorContract):
    executor_class = WebSocketExecutor
    heavy_modules = ("websockets", "jsonschema")
    secrets = (TOKEN,)

    @pytest.fixture
    def valid_inputs(self, ws_server: WsServer) -> dict[str, Any]:
        return {
            "url": ws_server.url("/auth"),
            "token": TOKEN,
            "message": {"hello": "world"},
            "wait_for": {"messages": 2},
        }

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({}, "url"),
            ({"url": "ws://127.0.0.1/", "timeout": -1}, "timeout"),
            ({"url": "ws://127.0.0.1/", "messages": "hi"}, "messages"),
            ({"url": "ws://127.0.0.1/", "wait_for": {"messages": -1}}, "wait_for"),
            ({"url": "ws://127.0.0.1/", "headers": {"X-A": 1}}, "headers.X-A"),
            ({"url": "ws://127.0.0.1/", "subprotocols": ["a b"]}, "subprotocols"),
        ]

    @pytest.fixture
    def failing_inputs(self, ws_server: WsServer) -> dict[str, Any]:
        return {"url": ws_server.url("/status/403"), "headers": {"Authorization": TOKEN}}

    @pytest.fixture
    def slow_inputs(self, ws_server: WsServer) -> dict[str, Any]:
        return {"url": ws_server.url("/slow"), "timeout": 600}

    @pytest.fixture
    def wait_until_busy(self, ws_server: WsServer) -> Callable[[], Awaitable[None]]:
        wait: Callable[[], Awaitable[None]] = ws_server.wait_connected
        return wait
