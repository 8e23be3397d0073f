"""Per-event-loop resources: one per loop, one close path (TaskManager.close, worker shutdown)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import (
    aclose_loop_resources,
    forget_loop_resource,
    loop_resource,
)
from aipartnerupflow.core.executors.resources import loop_resources
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session

from .conftest import POSTGRES_URL


class Client:
    made = 0

    def __init__(self) -> None:
        Client.made += 1
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def _client(key: Any = "client") -> Client:
    return await loop_resource(key, Client, Client.aclose)


async def test_one_resource_per_key_and_concurrent_first_uses_share_it() -> None:
    clients = await asyncio.gather(*(_client() for _ in range(20)))
    assert len({id(c) for c in clients}) == 1
    assert loop_resources() == {"client": clients[0]}
    await aclose_loop_resources()
    assert clients[0].closed == 1
    assert loop_resources() == {}


async def test_after_closing_a_new_resource_is_made() -> None:
    first = await _client()
    await aclose_loop_resources()
    second = await _client()
    assert second is not first
    await aclose_loop_resources()
    assert (first.closed, second.closed) == (1, 1)


async def test_async_factories_and_sync_close() -> None:
    closed: list[str] = []

    async def make() -> str:
        return "made"

    value = await loop_resource("s", make, closed.append)
    assert value == "made"
    await aclose_loop_resources()
    assert closed == ["made"]


async def test_a_failing_close_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    ok = await _client("ok")

    def boom(_: object) -> None:
        raise RuntimeError("cannot close")

    await loop_resource("bad", object, boom)
    await aclose_loop_resources()
    assert ok.closed == 1
    assert "closing the shared resource 'bad' failed" in caplog.text


async def test_forget_closes_one_resource() -> None:
    a, b = await _client("a"), await _client("b")
    await forget_loop_resource("a")
    assert (a.closed, b.closed) == (1, 0)
    assert await _client("a") is not a
    await forget_loop_resource("missing")  # harmless
    await aclose_loop_resources()


def test_each_loop_has_its_own_and_asyncio_run_closes_them() -> None:
    seen: list[Client] = []

    async def use() -> None:
        seen.append(await _client())

    asyncio.run(use())
    asyncio.run(use())
    assert seen[0] is not seen[1]
    assert [c.closed for c in seen] == [1, 1]  # closed at each loop's end, nobody asked


class UsesClient(ExecutableTask):
    id = "kit_uses_client"
    clients: list[Client] = []

    async def execute(self, inputs: dict[str, Any]) -> Any:
        UsesClient.clients.append(await _client("engine-client"))
        return {"ok": True}


async def test_task_manager_close_closes_the_loop_resources() -> None:
    UsesClient.clients = []
    registry = ExecutorRegistry()
    registry.register(UsesClient)
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    tree = [{"id": "a", "name": "a", "schemas": {"method": "kit_uses_client"}}]
    await manager.run_tasks(tree)
    await manager.run_tasks([{**tree[0], "id": "b", "name": "b"}])
    client = UsesClient.clients[0]
    assert UsesClient.clients == [client, client]  # shared between tasks
    assert client.closed == 0
    await manager.close()
    assert client.closed == 1


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"apflow_r_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.mark.postgres
async def test_worker_shutdown_closes_the_loop_resources(pg_url: str) -> None:
    from aipartnerupflow.core.worker import Worker

    client = await _client("worker-client")
    worker = Worker(pg_url, registry=ExecutorRegistry())
    run = asyncio.create_task(worker.run())
    worker.stop()
    await asyncio.wait_for(run, 60)
    assert client.closed == 1
