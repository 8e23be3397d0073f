"""Core test fixtures: a fresh registry with test executors, and a store per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aipartnerupflow.core.hooks import clear_hooks
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.base import TaskStorage

from ._executors import ALL_TEST_EXECUTORS, Recorder


@pytest.fixture
def recorder() -> Recorder:
    Recorder.reset()
    return Recorder


@pytest.fixture
def registry() -> ExecutorRegistry:
    reg = ExecutorRegistry()
    for cls in ALL_TEST_EXECUTORS:
        reg.register(cls)
    return reg


@pytest.fixture(params=["duckdb-memory", "duckdb-file"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb-memory":
        return "duckdb:///:memory:"
    return f"duckdb:///{tmp_path / 'tasks.duckdb'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[TaskStorage]:
    storage = create_session(store_url)
    await storage.initialize()
    yield storage
    await storage.close()


@pytest.fixture
async def manager(store: TaskStorage, registry: ExecutorRegistry,
                  recorder: type[Recorder]) -> AsyncIterator[TaskManager]:
    clear_hooks()
    tm = TaskManager(store, registry=registry, max_concurrency=8)
    yield tm
    await tm.close(close_storage=False)
    clear_hooks()
