"""Core test fixtures: a fresh registry with test executors, and a store per backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aipartnerupflow.core.hooks import clear_hooks
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.base import TaskStorage

from ._executors import ALL_TEST_EXECUTORS, Recorder

pytest_plugins = ["aipartnerupflow.testing.fixtures"]


@pytest.fixture
def recorder() -> type[Recorder]:
    Recorder.reset()
    return Recorder


@pytest.fixture
def registry() -> ExecutorRegistry:
    reg = ExecutorRegistry()
    for cls in ALL_TEST_EXECUTORS:
        reg.register(cls)
    return reg


POSTGRES_URL = os.environ.get(
    "APFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["duckdb-memory", "duckdb-file", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb-memory":
        return "duckdb:///:memory:"
    if request.param == "postgres":
        return POSTGRES_URL
    return f"duckdb:///{tmp_path / 'tasks.duckdb'}"


@pytest.fixture
async def store(store_url: str, request: pytest.FixtureRequest) -> AsyncIterator[TaskStorage]:
    if store_url.startswith("postgresql"):
        schema = request.getfixturevalue("postgres_schema")
        storage = create_session(store_url, connect_args={"options": f"-csearch_path={schema}"})
    else:
        storage = create_session(store_url)
    await storage.initialize()
    yield storage
    await storage.close()


@pytest.fixture
async def manager(
    store: TaskStorage, registry: ExecutorRegistry, recorder: type[Recorder]
) -> AsyncIterator[TaskManager]:
    clear_hooks()
    tm = TaskManager(store, registry=registry, max_concurrency=8)
    yield tm
    await tm.close(close_storage=False)
    clear_hooks()
