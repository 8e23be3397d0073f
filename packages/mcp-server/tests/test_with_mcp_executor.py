"""Our own ``mcp_executor`` (aipartnerupflow-executor-mcp) driving this MCP server over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.service import TaskService
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.mcp.executor import McpExecutor

from .helpers import task, token


@pytest.fixture(autouse=True)
def _allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_ALLOW_PRIVATE", "true")
    reload_settings()
    yield
    reload_settings()


async def test_mcp_executor_runs_a_tree_on_our_server(mcp_url: str) -> None:
    p = uuid.uuid4().hex[:6]
    registry = ExecutorRegistry()
    registry.register(McpExecutor, override=True)
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    inner = [task(f"{p}root"), task(f"{p}leaf", parent_id=f"{p}root")]
    outer: dict[str, Any] = {
        "id": "outer",
        "name": "remote tree",
        "schemas": {"method": "mcp_executor"},
        "inputs": {
            "url": mcp_url,
            "headers": {"Authorization": f"Bearer {token(f'exec-{p}')}"},
            "operation": "call_tool",
            "tool_name": "tasks_run_and_wait",
            "arguments": {"tasks": inner},
        },
    }
    bad = {**outer, "id": "bad", "inputs": {**outer["inputs"], "arguments": {"tasks": []}}}
    try:
        service = TaskService(manager)
        result = await service.execute({"tasks": [outer]})
        failed = await service.execute({"tasks": [bad]})
    finally:
        await manager.close()
    assert result.status == "completed", result.to_dict()
    remote = result.tasks[0].result["result"]["structuredContent"]
    assert remote["status"] == "completed" and remote["root_task_id"] == f"{p}root"
    assert failed.status == "failed"
    assert "tasks" in str(failed.tasks[0].error)
