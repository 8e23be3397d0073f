"""Cancelling a task closes its WebSocket; the server sees the close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aipartnerupflow.core.errors import PermanentError
from aipartnerupflow.extensions.websocket import WebSocketExecutor

from .conftest import WsServer


async def test_cancelling_the_task_closes_the_connection(
    ws_server: WsServer, task_manager: Any
) -> None:
    task = {
        "id": "listen",
        "name": "listen",
        "schemas": {"method": "websocket_executor"},
        "inputs": {"url": ws_server.url("/slow"), "wait_for": {"close": True}, "timeout": 600},
    }
    run = asyncio.create_task(task_manager.run_tasks([task]))
    await asyncio.wait_for(ws_server.wait_connected(), 60)
    seen = ws_server.connections[0]
    assert not seen.closed.is_set()
    await task_manager.cancel_task("listen")
    tree = await asyncio.wait_for(run, 60)
    assert tree.task("listen").status == "cancelled"
    await asyncio.wait_for(seen.closed.wait(), 60)
    assert (seen.close_code, seen.close_reason) == (1001, "task cancelled")


async def test_cancel_on_the_executor_ends_execute(ws_server: WsServer) -> None:
    executor = WebSocketExecutor()
    job = asyncio.create_task(executor.execute({"url": ws_server.url("/slow"), "timeout": 600}))
    await asyncio.wait_for(ws_server.wait_connected(), 60)
    await executor.cancel()
    with pytest.raises(PermanentError, match="the task was cancelled"):
        await asyncio.wait_for(job, 60)
    seen = ws_server.connections[0]
    await asyncio.wait_for(seen.closed.wait(), 60)
    assert (seen.close_code, seen.close_reason) == (1001, "task cancelled")


async def client_open(executor: WebSocketExecutor) -> None:
    """Until the client side finished its handshake (the server's side finishes first)."""
    while executor._exchange is None or executor._exchange.connection is None:
        await asyncio.sleep(0.01)


async def test_cancelling_the_asyncio_task_closes_the_connection(ws_server: WsServer) -> None:
    executor = WebSocketExecutor()
    job = asyncio.create_task(executor.execute({"url": ws_server.url("/slow"), "timeout": 600}))
    await asyncio.wait_for(client_open(executor), 60)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    seen = ws_server.connections[0]
    await asyncio.wait_for(seen.closed.wait(), 60)
    assert (seen.close_code, seen.close_reason) == (1001, "task cancelled")


async def test_cancel_before_execute_connects_nothing(ws_server: WsServer) -> None:
    executor = WebSocketExecutor()
    await executor.cancel()
    with pytest.raises(PermanentError, match="cancelled"):
        await executor.execute({"url": ws_server.url("/echo"), "message": "x"})
    assert not ws_server.connections
