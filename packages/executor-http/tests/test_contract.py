"""rest_executor passes the executor contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aipartnerupflow.extensions.http import RestExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

TOKEN = "contract-token-5e6f7a"
API_KEY = "contract-key-8b9c0d"


class TestRestExecutorContract(ExecutorContract):
    executor_class = RestExecutor
    heavy_modules = ("httpx", "httpcore", "h11", "anyio", "jsonschema")
    secrets = (TOKEN, API_KEY)

    @pytest.fixture
    def valid_inputs(self, http_server: Any) -> dict[str, Any]:
        return {
            "url": http_server.url + "/echo",
            "method": "POST",
            "json": {"hello": "world"},
            "auth": {"type": "bearer", "token": TOKEN},
        }

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({}, "url"),
            ({"url": "http://127.0.0.1/", "method": "BREW"}, "method"),
            ({"url": "http://127.0.0.1/", "timeout": -1}, "timeout"),
            ({"url": "http://127.0.0.1/", "retry": {"attempts": 3}}, "retry"),
            ({"url": "http://127.0.0.1/", "retryable_status": [42]}, "retryable_status"),
            ({"url": "http://127.0.0.1/", "auth": {"type": "bearer", "tokn": "x"}}, "auth"),
        ]

    @pytest.fixture
    def failing_inputs(self, http_server: Any) -> dict[str, Any]:
        return {
            "url": http_server.url + "/status/500",
            "auth": {"type": "api_key", "value": API_KEY, "in": "query"},
        }

    @pytest.fixture
    def slow_inputs(self, http_server: Any) -> dict[str, Any]:
        return {"url": http_server.url + "/hang"}

    @pytest.fixture
    def wait_until_busy(self, http_server: Any) -> Callable[[], Awaitable[None]]:
        wait: Callable[[], Awaitable[None]] = http_server.state.wait_received
        return wait
