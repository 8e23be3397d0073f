"""A slow executor (it waits until cancelled) and MCP client sessions for the tests."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from aipartnerupflow.api.security import create_token
from aipartnerupflow.core.base_task import BaseTask

SECRET = "mcp-server-test-secret-key-0123456789"
STARTED = threading.Event()
CANCELLED = threading.Event()

MessageHandler = Any  # mcp's MessageHandlerFnT


class SlowExecutor(BaseTask):
    """Waits until it is cancelled (records that it was)."""

    id = "mcp_server_test_slow"
    name = "Slow (tests)"
    description = "Sleeps until cancelled."
    inputs_schema = {"type": "object"}

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        STARTED.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            CANCELLED.set()
            raise
        return {}


def token(user: str, *roles: str) -> str:
    return create_token(user, SECRET, roles=list(roles))


def task(ident: str, method: str = "aggregate_results_executor", **extra: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "schemas": {"method": method}, **extra}


@contextlib.asynccontextmanager
async def http_session(
    url: str, user: str | None = "alice", *roles: str, on_message: MessageHandler | None = None
) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token(user, *roles)}"} if user else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60, read=300)) as client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def stdio_session(database_url: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "aipartnerupflow.mcp_server", "--database-url", database_url],
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def data(result: types.CallToolResult) -> Any:
    assert result.isError is False, result.content
    return result.structuredContent


def error_text(result: types.CallToolResult) -> str:
    assert result.isError is True, result.structuredContent
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text
