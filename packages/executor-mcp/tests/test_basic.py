"""mcp_executor against a real FastMCP server over streamable HTTP and stdio."""

from __future__ import annotations

from typing import Any

import pytest

from aipartnerupflow.core.executors.resources import aclose_loop_resources
from aipartnerupflow.extensions.mcp import McpExecutor


async def call(inputs: dict[str, Any]) -> dict[str, Any]:
    return await McpExecutor().execute(inputs)


@pytest.fixture(params=["http", "stdio"])
def server(
    request: pytest.FixtureRequest, mcp_url: str, stdio_command: list[str]
) -> dict[str, Any]:
    if request.param == "http":
        return {"transport": "http", "url": mcp_url}
    return {"transport": "stdio", "command": stdio_command}


async def test_call_tool(server: dict[str, Any]) -> None:
    try:
        result = await call(
            {**server, "operation": "call_tool", "tool_name": "add", "arguments": {"a": 2, "b": 3}}
        )
        assert result["result"]["text"] == "5"
        assert result["result"]["structuredContent"] == {"result": 5}
    finally:
        await aclose_loop_resources()
