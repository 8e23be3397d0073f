"""The shared fixtures: task_manager, run_tree and serve_asgi."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest

from aipartnerupflow import TaskManager
from aipartnerupflow.testing.fixtures import RunTree, ServeAsgi


async def test_task_manager_runs_a_tree(task_manager: TaskManager) -> None:
    result = await task_manager.run_tasks(
        [{"id": "a", "name": "a", "schemas": {"method": "aggregate_results_executor"}}]
    )
    assert result.status == "completed"


async def test_run_tree(run_tree: RunTree) -> None:
    result = await run_tree(
        [
            {"id": "r", "name": "r", "schemas": {"method": "aggregate_results_executor"}},
            {
                "id": "c",
                "name": "c",
                "parent_id": "r",
                "dependencies": ["r"],
                "schemas": {"method": "aggregate_results_executor"},
            },
        ]
    )
    assert result.task("c").result["count"] == 1


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": scope["path"].encode()})


def test_serve_asgi(serve_asgi: ServeAsgi) -> None:
    pytest.importorskip("uvicorn")
    server = serve_asgi(hello_app)
    assert server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server.url + "/ping") as response:
        assert response.read() == b"/ping"


async def test_serve_asgi_from_async_code(serve_asgi: ServeAsgi) -> None:
    pytest.importorskip("uvicorn")
    server = serve_asgi(hello_app)

    def fetch() -> bytes:
        with urllib.request.urlopen(server.url + "/async") as response:
            return bytes(response.read())

    assert await asyncio.to_thread(fetch) == b"/async"


def test_public_names() -> None:
    import aipartnerupflow.testing as testing

    assert testing.ExecutorContract.__name__ == "ExecutorContract"
    assert testing.LoopbackServer.__name__ == "LoopbackServer"
    with pytest.raises(AttributeError):
        _ = testing.nothing_here
