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

``postgres_url``
    The PostgreSQL server tests use: ``APFLOW_TEST_POSTGRES_URL``, default
    ``postgresql://postgres@127.0.0.1:5432/postgres`` (needs ``aipartnerupflow-core[postgres]``).
``postgres_schema``
    A fresh schema on that server, dropped after the test. There is no skip: without a reachable
    server the fixture fails, so a missing database never passes silently.

The async fixtures are declared with ``pytest_asyncio.fixture``, so they work in both the
``strict`` and ``auto`` modes of pytest-asyncio.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from aipartnerupflow.testing.server import LoopbackServer

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.results import TreeResult

__all__ = [
    "RunTree",
    "ServeAsgi",
    "postgres_schema",
    "postgres_url",
    "run_tree",
    "serve_asgi",
    "task_manager",
]

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


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get(
        "APFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards; fails (never skips) without PostgreSQL."""
    import sqlalchemy as sa

    name = f"apflow_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()
