"""The executor contract (aipartnerupflow.testing.contract) for mcp_executor, over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aipartnerupflow.extensions.mcp import McpExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase, OversizedCase

from . import mcp_server
from .conftest import TOKEN


class TestMcpContract(ExecutorContract):
    executor_class = McpExecutor
    strict = True
    network = True
    heavy_modules = ("mcp", "httpx", "anyio")
    secrets = (TOKEN,)

    @pytest.fixture
    def valid_inputs(self, mcp_url: str) -> dict[str, Any]:
        return {
            "url": mcp_url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "tool_name": "echo",
            "arguments": {"text": "contract"},
        }

    @pytest.fixture
    def invalid_inputs(self, mcp_url: str) -> list[InvalidCase]:
        return [
            ({"url": 3, "tool_name": "echo"}, "url"),
            ({"url": mcp_url, "tool_name": "echo", "timeout": -1}, "timeout"),
            ({"url": mcp_url, "operation": "delete_everything"}, "operation"),
            ({"url": mcp_url, "tool_name": "echo", "arguments": [1]}, "arguments"),
            ({"command": "python server.py", "tool_name": "echo"}, "command"),
        ]

    @pytest.fixture
    def failing_inputs(self, mcp_url: str) -> dict[str, Any]:
        return {
            "url": mcp_url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "tool_name": "fail",
            "arguments": {"message": "told to fail"},
        }

    @pytest.fixture
    def permanent_failing_inputs(self, mcp_url: str) -> dict[str, Any]:
        return {"url": mcp_url, "tool_name": "add", "arguments": {"a": "not a number", "b": 1}}

    @pytest.fixture
    def slow_inputs(self, mcp_url: str) -> dict[str, Any]:
        return {"url": mcp_url, "tool_name": "hang", "timeout": 120}

    @pytest.fixture
    def wait_until_busy(self) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            await asyncio.to_thread(mcp_server.HANG_STARTED.wait, 10)

        return wait

    @pytest.fixture
    def oversized_inputs(self, mcp_url: str) -> OversizedCase:
        inputs = {
            "url": mcp_url,
            "tool_name": "big",
            "arguments": {"size": 1_000_000},
            "max_output_bytes": 1000,
        }
        return inputs, 1000

    @pytest.fixture
    def loopback_inputs(self, mcp_url: str) -> dict[str, Any]:
        return {"url": mcp_url, "tool_name": "pid"}

    @pytest.fixture
    def private_allowed(self) -> bool:
        return True  # conftest allows it; test_loopback_denied_by_default proves the default
