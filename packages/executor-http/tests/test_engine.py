"""rest_executor inside task trees run by the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from aipartnerupflow import BaseTask, TaskManager, create_session
from aipartnerupflow.core.errors import TaskTreeValidationError
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.extensions.http import RestExecutor


class CountItems(BaseTask):
    """Reads the response of the HTTP task it depends on."""

    id = "count_items"
    name = "Count items"
    description = "Counts the items in an HTTP response."

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        response = inputs["fetch"]
        items = response["body"]["query"]
        return {"count": len(items), "status": "ok", "first": items[0][1]}


class ReadBody(BaseTask):
    """Declares ``body`` in its input schema, so the engine copies that field to the top level."""

    id = "read_body"
    name = "Read body"
    description = "Returns the body field it was given."

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"method_seen": inputs["body"]["method"]}


@pytest_asyncio.fixture
async def manager() -> AsyncIterator[TaskManager]:
    registry = ExecutorRegistry()
    registry.register(CountItems)
    registry.register(ReadBody)
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        yield tm
    finally:
        await tm.close()


def test_rest_executor_is_installed_as_an_entry_point() -> None:
    registry = get_executor_registry()
    assert "rest_executor" in registry.ids()
    assert registry.source("rest_executor") == "aipartnerupflow-executor-http"
    assert registry.get("rest_executor") is RestExecutor


async def test_dependent_task_uses_the_http_response(
    http_server: Any, manager: TaskManager
) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "fetch",
                "name": "fetch",
                "schemas": {"method": "rest_executor"},
                "inputs": {"url": http_server.url + "/echo", "params": {"item": ["a", "b", "c"]}},
            },
            {
                "id": "count",
                "name": "count",
                "parent_id": "fetch",
                "dependencies": [{"id": "fetch", "required": True}],
                "schemas": {"method": "count_items"},
            },
            {
                "id": "read",
                "name": "read",
                "parent_id": "fetch",
                "dependencies": ["fetch"],
                "schemas": {
                    "method": "read_body",
                    "input_schema": {"type": "object", "properties": {"body": {}}},
                },
            },
            {
                "id": "notify",
                "name": "notify",
                "parent_id": "count",
                "dependencies": ["count"],
                "schemas": {"method": "rest_executor"},
                "inputs": {"url": http_server.url + "/echo", "method": "POST", "json": {"a": 1}},
            },
        ]
    )
    assert result.status == "completed", result.to_dict()
    assert result.task("count").result == {"count": 3, "status": "ok", "first": "a"}
    assert result.task("read").result == {"method_seen": "GET"}
    notify = result.task("notify").result
    assert notify["status_code"] == 200
    assert notify["body"]["method"] == "POST"


async def test_failed_request_fails_the_task_and_its_dependents(
    http_server: Any, manager: TaskManager
) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "fetch",
                "name": "fetch",
                "schemas": {"method": "rest_executor"},
                "inputs": {"url": http_server.url + "/status/503"},
            },
            {
                "id": "count",
                "name": "count",
                "parent_id": "fetch",
                "dependencies": ["fetch"],
                "schemas": {"method": "count_items"},
            },
        ]
    )
    assert result.status == "failed"
    fetch = result.task("fetch")
    assert fetch.status == "failed"
    assert (fetch.error or "").startswith(f"GET {http_server.url}/status/503 returned 503")
    assert result.task("count").status in ("failed", "cancelled")
    assert "fetch" in (result.task("count").error or "")


async def test_invalid_inputs_are_rejected_when_the_tree_is_created(
    manager: TaskManager,
) -> None:
    with pytest.raises(TaskTreeValidationError, match="'method'"):
        await manager.run_tasks(
            [
                {
                    "id": "x",
                    "name": "x",
                    "schemas": {"method": "rest_executor"},
                    "inputs": {"url": "http://127.0.0.1/", "method": "BREW"},
                }
            ]
        )


async def test_cancel_mid_request(http_server: Any, manager: TaskManager) -> None:
    run = asyncio.create_task(
        manager.run_tasks(
            [
                {
                    "id": "slow",
                    "name": "slow",
                    "schemas": {"method": "rest_executor"},
                    "inputs": {"url": http_server.url + "/hang"},
                }
            ]
        )
    )
    await http_server.state.wait_received()
    assert await manager.cancel_task("slow") == ["slow"]
    result = await run
    assert result.status == "cancelled"
    assert result.task("slow").status == "cancelled"
    assert await http_server.state.wait_disconnected()


async def test_task_timeout_interrupts_the_request(http_server: Any, manager: TaskManager) -> None:
    result = await manager.run_tasks(
        [
            {
                "id": "slow",
                "name": "slow",
                "schemas": {"method": "rest_executor"},
                "timeout_seconds": 0.2,
                "inputs": {"url": http_server.url + "/hang"},
            }
        ]
    )
    assert result.task("slow").status == "failed"
    assert "timed out" in (result.task("slow").error or "")
    assert await http_server.state.wait_disconnected()


async def test_many_tasks_share_one_pool(http_server: Any, manager: TaskManager) -> None:
    from aipartnerupflow.extensions.http import _client

    tasks = [
        {
            "id": "root",
            "name": "root",
            "schemas": {"method": "rest_executor"},
            "inputs": {"url": http_server.url + "/echo"},
        }
    ] + [
        {
            "id": f"t{i}",
            "name": f"t{i}",
            "parent_id": "root",
            "schemas": {"method": "rest_executor"},
            "inputs": {"url": http_server.url + f"/echo/{i}"},
        }
        for i in range(20)
    ]
    result = await manager.run_tasks(tasks)
    assert result.status == "completed"
    assert len(_client.clients_of_running_loop()) == 1
    assert len(http_server.state.requests) == 21
