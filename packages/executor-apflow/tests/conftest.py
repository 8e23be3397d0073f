"""Fixtures: a second aipartnerupflow instance (our A2A server, own DuckDB file, JWT auth) and a
generic a2a-sdk agent, both on loopback; the local engine on its own in-memory DuckDB."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aipartnerupflow.api import create_token
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.apflow import ApflowApiExecutor

from .remote import (
    JWT_SECRET,
    REMOTE_EXECUTORS,
    GenericAgentServer,
    RemoteInstance,
    Signals,
    register_remote_executors,
)


@pytest.fixture(scope="session")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteInstance]:
    register_remote_executors()
    db = Path(tmp_path_factory.mktemp("remote")) / "remote.duckdb"
    instance = RemoteInstance(f"duckdb:///{db}").start()
    try:
        yield instance
    finally:
        instance.stop()
        for cls in REMOTE_EXECUTORS:
            get_executor_registry().unregister(cls.id)


@pytest.fixture(scope="session")
def generic_agent() -> Iterator[GenericAgentServer]:
    server = GenericAgentServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def token() -> str:
    return create_token("alice", JWT_SECRET)


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIPARTNERUPFLOW_APFLOW_ALLOW_PRIVATE", "true")
    reload_settings()
    Signals.started, Signals.cancelled, Signals.runs = {}, {}, {}
    yield
    reload_settings()


@pytest.fixture
async def manager() -> AsyncIterator[TaskManager]:
    """The local engine: a private registry with only apflow_api_executor."""
    registry = ExecutorRegistry()
    registry.register(ApflowApiExecutor, override=True)
    engine = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        yield engine
    finally:
        await engine.close()
