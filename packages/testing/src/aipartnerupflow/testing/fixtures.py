"""Shared pytest fixtures for aipartnerupflow packages (a pytest plugin module).

Load it from your package's top-level ``tests/conftest.py``::

    pytest_plugins = ["aipartnerupflow.testing.fixtures"]

Fixtures:

``task_manager``
    A :class:`~aipartnerupflow.TaskManager` on an in-memory DuckDB store, using the process-wide
    executor registry; closed after the test.
``run_tree``
    ``await run_tree([...task JSON...])`` runs a tree with ``task_manager`` and returns its
    :class:`~aipartnerupflow.core.results.TreeResult`.
``serve_asgi``
    ``server = serve_asgi(app, certfile=..., keyfile=...)`` serves an ASGI app on loopback
    (uvicorn in a thread, free port; needs ``uvicorn`` installed) and stops it after the test.
    ``server.url`` is its base URL.

The async fixtures are declared with ``pytest_asyncio.fixture``, so they work in both the
``strict`` and ``auto`` modes of pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from aipartnerupflow.testing.server import LoopbackServer

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.results import TreeResult

__all__ = ["RunTree", "ServeAsgi", "run_tree", "serve_asgi", "task_manager"]

RunTree = Callable[..., Awaitable["TreeResult"]]
ServeAsgi = Callable[..., LoopbackServer]


@pytest_asyncio.fixture
async def task_manager() -> AsyncIterator[TaskManager]:
    """A TaskManager on an in-memory DuckDB store, closed after the test."""
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    manager = TaskManager(create_session("duckdb:///:memory:"))
    try:
        yield manager
    finally:
        await manager.close()


@pytest.fixture
def run_tree(task_manager: TaskManager) -> RunTree:
    """``await run_tree(tasks, **kwargs)``: run task JSON with ``task_manager``."""

    async def run(tasks: list[dict[str, Any]], **kwargs: Any) -> TreeResult:
        return await task_manager.run_tasks(tasks, **kwargs)

    return run


@pytest.fixture
def serve_asgi() -> Iterator[ServeAsgi]:
    """``serve_asgi(app, **options)`` starts a :class:`LoopbackServer`; all stop after the test."""
    servers: list[LoopbackServer] = []

    def start(app: Any, **options: Any) -> LoopbackServer:
        server = LoopbackServer(app, **options).start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.stop()
