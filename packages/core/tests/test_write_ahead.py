"""Write-ahead attempt starts, and the rules around the executor call shared by both engines."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aipartnerupflow.core.events import TaskEvent
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.hooks import clear_hooks, register_pre_hook
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

from .conftest import POSTGRES_URL


class Noop(ExecutableTask):
    id = "wa_noop"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"ok": True}


class SeesOwnRow(ExecutableTask):
    """Reads its own row over a second connection: the attempt must already be committed."""

    id = "wa_sees_row"
    url = ""

    async def execute(self, inputs: dict[str, Any]) -> Any:
        import psycopg

        ctx = self.context
        assert ctx is not None
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT status, attempts FROM apflow_tasks WHERE id = %s", (ctx.task_id,)
            ).fetchone()
        assert row is not None
        return {"status": row[0], "attempts": row[1], "attempt": ctx.attempt}


class EchoInputs(ExecutableTask):
    id = "wa_echo"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"inputs": inputs}


@pytest.fixture
def registry() -> ExecutorRegistry:
    reg = ExecutorRegistry()
    for cls in (Noop, SeesOwnRow, EchoInputs):
        reg.register(cls)
    return reg


@pytest.fixture
def pg_db() -> Iterator[str]:
    name = f"apflow_wa_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


async def test_a_fan_out_of_1000_starts_in_one_write_ahead_commit(
    tmp_path: Path, registry: ExecutorRegistry
) -> None:
    store = create_session(f"duckdb:///{tmp_path / 'w.duckdb'}")
    sizes: list[int] = []
    original = store.write_ahead

    def recording(changes: dict[str, dict[str, Any]]) -> Any:
        sizes.append(len(changes))
        return original(changes)

    store.write_ahead = recording  # type: ignore[method-assign]
    tasks: list[dict[str, Any]] = [{"id": "root", "name": "root"}] + [
        {"id": f"c{i}", "name": f"c{i}", "parent_id": "root", "schemas": {"method": "wa_noop"}}
        for i in range(1000)
    ]
    async with TaskManager(store, registry=registry, max_concurrency=1000) as tm:
        result = await tm.run_tasks(tasks)
    assert result.status == "completed"
    assert sizes == [1000]


@pytest.mark.postgres
async def test_the_start_is_committed_before_the_executor_runs(
    pg_db: str, registry: ExecutorRegistry
) -> None:
    SeesOwnRow.url = pg_db
    tasks = [
        {"id": "a", "name": "a", "schemas": {"method": "wa_sees_row"}},
        {"id": "b", "name": "b", "parent_id": "a", "schemas": {"method": "wa_sees_row"}},
    ]
    async with TaskManager(create_session(pg_db), registry=registry) as tm:
        result = await tm.run_tasks(tasks)
    for outcome in result.tasks:
        assert outcome.result == {"status": "in_progress", "attempts": 1, "attempt": 1}


async def test_pre_hooks_see_dependency_results_and_their_edits_are_kept(
    tmp_path: Path, registry: ExecutorRegistry
) -> None:
    seen: list[dict[str, Any]] = []

    def hook(task: TaskModel) -> None:
        if task.id == "second":
            seen.append(dict(task.inputs))
            task.inputs["added"] = 1

    clear_hooks()
    register_pre_hook(hook)
    try:
        url = f"duckdb:///{tmp_path / 'h.duckdb'}"
        async with TaskManager(create_session(url), registry=registry) as tm:
            result = await tm.run_tasks(
                [
                    {"id": "first", "name": "first", "schemas": {"method": "wa_noop"}},
                    {
                        "id": "second",
                        "name": "second",
                        "parent_id": "first",
                        "dependencies": ["first"],
                        "inputs": {"given": 2},
                        "schemas": {"method": "wa_echo"},
                    },
                ]
            )
            stored = await tm.storage.get_task("second")
    finally:
        clear_hooks()
    assert seen == [{"given": 2, "first": {"ok": True}}]
    assert result.task("second").result == {
        "inputs": {"given": 2, "first": {"ok": True}, "added": 1}
    }
    assert stored is not None and stored.inputs == {"given": 2, "added": 1}


async def test_a_failing_async_listener_is_logged_once_with_its_name(
    tmp_path: Path, registry: ExecutorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_listener(event: TaskEvent) -> None:
        raise RuntimeError("listener bug")

    url = f"duckdb:///{tmp_path / 'l.duckdb'}"
    async with TaskManager(create_session(url), registry=registry) as tm:
        tm.add_listener(broken_listener)
        with caplog.at_level(logging.ERROR, logger="aipartnerupflow.events"):
            result = await tm.run_tasks(
                [{"id": "r", "name": "r", "schemas": {"method": "wa_noop"}}]
                + [
                    {"id": f"k{i}", "name": "k", "parent_id": "r", "schemas": {"method": "wa_noop"}}
                    for i in range(5)
                ]
            )
            await asyncio.sleep(0.05)
    assert result.status == "completed"
    lines = [r for r in caplog.records if "broken_listener" in r.getMessage()]
    assert len(lines) == 1
    assert "Task exception was never retrieved" not in caplog.text


async def test_resume_finds_a_tree_whose_run_began_but_has_nothing_in_progress(
    tmp_path: Path, registry: ExecutorRegistry
) -> None:
    """A crash between one task's end and the next one's start leaves no in_progress row."""
    url = f"duckdb:///{tmp_path / 'r.duckdb'}"
    async with TaskManager(create_session(url), registry=registry) as tm:
        await tm.create_task_tree_from_array(
            [
                {"id": "a", "name": "a", "schemas": {"method": "wa_noop"}},
                {
                    "id": "b",
                    "name": "b",
                    "parent_id": "a",
                    "dependencies": ["a"],
                    "schemas": {"method": "wa_noop"},
                },
            ]
        )
        await tm.create_task_tree_from_array(
            [{"id": "fresh", "name": "fresh", "schemas": {"method": "wa_noop"}}]
        )
        from datetime import UTC, datetime

        await tm.storage.update_task(
            "a", {"status": "completed", "attempts": 1, "started_at": datetime.now(UTC)}
        )
        assert await tm.storage.interrupted_roots([]) == ["a"]  # not the never-run tree
        results = await tm.resume_interrupted()
    assert [r.root_id for r in results] == ["a"]
    assert results[0].task("b").status == "completed"
    assert results[0].task("a").attempts == 1  # the finished task did not run again


class Reports(ExecutableTask):
    id = "wa_reports"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        ctx.report_progress(0.5, "half way")
        await asyncio.sleep(0.5)  # the worker sends progress a few times a second
        return {"done": True}


@pytest.mark.postgres
async def test_workers_send_progress_and_give_post_hooks_the_merged_inputs(
    pg_db: str, registry: ExecutorRegistry
) -> None:
    from aipartnerupflow.core.hooks import register_post_hook
    from aipartnerupflow.core.worker import Worker

    registry.register(Reports)
    post: list[tuple[str, dict[str, Any]]] = []
    clear_hooks()
    register_post_hook(lambda task, inputs, result: post.append((task.id, dict(inputs))))
    try:
        async with TaskManager(create_session(pg_db), registry=registry) as tm:
            await tm.storage.initialize()
            worker = Worker(pg_db, registry=registry, poll_seconds=0.1)
            runner = asyncio.create_task(worker.run())
            tree = await tm.submit(
                [
                    {"id": "p", "name": "p", "schemas": {"method": "wa_reports"}},
                    {
                        "id": "q",
                        "name": "q",
                        "parent_id": "p",
                        "dependencies": ["p"],
                        "inputs": {"given": 1},
                        "schemas": {"method": "wa_echo"},
                    },
                ]
            )
            events = [e async for e in tm.stream(tree.task.id)]
            worker.stop()
            await runner
    finally:
        clear_hooks()
    progress = [e for e in events if e.kind == "task_progress"]
    assert progress and progress[0].progress == 0.5 and progress[0].message == "half way"
    assert ("q", {"given": 1, "p": {"done": True}}) in post


async def test_write_ahead_can_be_turned_off(tmp_path: Path, registry: ExecutorRegistry) -> None:
    store = create_session(f"duckdb:///{tmp_path / 'off.duckdb'}")
    calls: list[int] = []
    original = store.write_ahead

    def recording(changes: dict[str, dict[str, Any]]) -> Any:
        calls.append(len(changes))
        return original(changes)

    store.write_ahead = recording  # type: ignore[method-assign]
    async with TaskManager(store, registry=registry, write_ahead=False) as tm:
        result = await tm.run_tasks(
            [{"id": "r", "name": "r", "schemas": {"method": "wa_noop"}}]
            + [
                {"id": f"k{i}", "name": "k", "parent_id": "r", "schemas": {"method": "wa_noop"}}
                for i in range(10)
            ]
        )
        stored = await store.get_tree("r")
    assert result.status == "completed" and calls == []
    assert all(t.status == "completed" and t.attempts == 1 for t in stored)


@pytest.mark.postgres
async def test_postgres_task_pages_leave_room_for_hot_updates(pg_db: str) -> None:
    """Run-state updates touch no indexed column; with room on the page they stay HOT."""
    store = create_session(pg_db)
    await store.initialize()
    assert isinstance(store, SqlTaskStorage)

    def options(conn: sa.Connection) -> Any:
        sql = "SELECT reloptions FROM pg_class WHERE relname = 'apflow_tasks'"
        return conn.execute(sa.text(sql)).scalar()

    try:
        assert store.call_sync(options) == ["fillfactor=50"]
    finally:
        await store.close()
