"""Scale-out on PostgreSQL: real worker processes sharing queued trees."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aipartnerupflow.core.errors import ConfigurationError, StorageError
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.pgqueue import claim_sql, connect, finish_sql
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.worker import Worker, _End

from .conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres

EXECUTORS = textwrap.dedent('''
    import asyncio, os, time
    from aipartnerupflow import ExecutableTask, executor_register

    def _record(kind, ctx):
        line = f"{kind} {ctx.task_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\\n"
        fd = os.open(os.environ["SIDE_EFFECT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @executor_register(override=True)
    class Count(ExecutableTask):
        """Adds 1 to the sum of its dependencies' values."""
        id = "w_count"

        async def execute(self, inputs):
            ctx = self.context
            _record("start", ctx)
            await asyncio.sleep(float(inputs.get("sleep", 0)))
            value = 1 + sum(r["value"] for r in ctx.dependency_results.values())
            _record("end", ctx)
            return {"value": value}

    @executor_register(override=True)
    class Block(ExecutableTask):
        id = "w_block"

        async def execute(self, inputs):
            _record("start", self.context)
            await asyncio.Event().wait()
''')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of its own for each test (workers connect by URL)."""
    name = f"apflow_w_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "worker_executors.py").write_text(EXECUTORS)
    return tmp_path


@pytest.fixture
async def manager(pg_url: str, plugin_dir: Path) -> AsyncIterator[TaskManager]:
    sys.path.insert(0, str(plugin_dir))
    try:
        import worker_executors
    finally:
        sys.path.remove(str(plugin_dir))
    registry = ExecutorRegistry()
    registry.register(worker_executors.Count)
    registry.register(worker_executors.Block)
    tm = TaskManager(create_session(pg_url), registry=registry)
    await tm.storage.initialize()
    yield tm
    await tm.close()
    sys.modules.pop("worker_executors", None)


class Workers:
    """Worker processes started with ``python -m aipartnerupflow.core.worker``."""

    def __init__(self, url: str, plugin_dir: Path, log: Path, lease: float = 30.0) -> None:
        self.url, self.log = url, log
        self.env = {
            **os.environ,
            "PYTHONPATH": str(plugin_dir),
            "SIDE_EFFECT_LOG": str(log),
            "AIPARTNERUPFLOW_LEASE_SECONDS": str(lease),
        }
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, n: int, concurrency: int = 8) -> None:
        for _ in range(n):
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "aipartnerupflow.core.worker",
                        self.url,
                        str(concurrency),
                        "worker_executors",
                    ],
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )

    async def ready(self, timeout: float = 60) -> None:
        """Wait until every started worker is connected (so all of them compete for work)."""
        engine = sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as conn:
                    n = conn.execute(
                        sa.text(
                            "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
                            "WHERE application_name LIKE 'apflow-worker%'"
                        )
                    ).scalar()
                if n is not None and n >= len(self.procs):
                    return
                assert time.monotonic() < deadline, "the workers did not start"
                await asyncio.sleep(0.05)
        finally:
            engine.dispose()

    def stop(self) -> list[dict[str, int]]:
        stats = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            out, _ = proc.communicate(timeout=60)
            if proc.returncode == 0 and out.strip():
                stats.append(json.loads(out.strip().splitlines()[-1]))
        return stats

    def records(self) -> list[tuple[str, str, int, int, float]]:
        if not self.log.exists():
            return []
        rows = []
        for line in self.log.read_text().splitlines():
            kind, task_id, attempt, pid, at = line.split()
            rows.append((kind, task_id, int(attempt), int(pid), float(at)))
        return rows


def _dag(n: int) -> list[dict[str, Any]]:
    """A root and n tasks in layers of 50; each depends on up to 3 tasks of the layer above."""
    tasks: list[dict[str, Any]] = [{"id": "root", "name": "root", "schemas": {"method": "w_count"}}]
    for i in range(n):
        layer = i // 50
        deps = [f"t{(layer - 1) * 50 + (i * k) % 50}" for k in (1, 3, 7)] if layer else ["root"]
        tasks.append(
            {
                "id": f"t{i}",
                "name": f"t{i}",
                "parent_id": "root",
                "dependencies": sorted(set(deps)),
                "schemas": {"method": "w_count"},
                "priority": i % 4,
            }
        )
    return tasks


def _expected_values(tasks: list[dict[str, Any]]) -> dict[str, int]:
    values: dict[str, int] = {}
    for t in tasks:  # dependencies always come earlier in the list
        values[t["id"]] = 1 + sum(values[d] for d in t.get("dependencies", []))
    return values


async def test_four_workers_run_a_2000_task_dag_exactly_once(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    workers.start(4, concurrency=16)
    try:
        await workers.ready()
        tasks = _dag(2000)
        tree = await manager.submit(tasks)
        result = await manager.wait(tree.task.id, timeout=300)
    finally:
        stats = workers.stop()
    assert result.status == "completed"
    expected = _expected_values(tasks)
    assert {o.id: o.result["value"] for o in result.tasks} == expected
    records = workers.records()
    starts = defaultdict(list)
    ends: dict[str, float] = {}
    for kind, task_id, _, _, at in records:
        if kind == "start":
            starts[task_id].append(at)
        else:
            assert task_id not in ends, f"{task_id} ran twice"
            ends[task_id] = at
    assert set(ends) == set(expected) and all(len(s) == 1 for s in starts.values())
    for t in tasks:
        for dep in t.get("dependencies", []):
            assert starts[t["id"]][0] >= ends[dep], f"{t['id']} started before {dep} ended"
    assert len(stats) == 4 and sum(s["finished"] for s in stats) == len(tasks)
    assert sum(1 for s in stats if s["finished"]) >= 2, "the work was shared"
    assert all(s["stale_writes"] == 0 for s in stats)


async def test_killed_worker_tasks_are_reclaimed_and_only_killed_attempts_repeat(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log", lease=2.0)
    workers.start(3, concurrency=4)
    try:
        await workers.ready()
        retry = {"max_attempts": 3}  # a lost worker's attempt counts as one
        tasks = [
            {"id": "root", "name": "root", "schemas": {"method": "w_count"}, "retry": retry}
        ] + [
            {
                "id": f"t{i}",
                "name": f"t{i}",
                "parent_id": "root",
                "inputs": {"sleep": 0.15},
                "dependencies": [f"t{i - 3}"] if i >= 3 else [],
                "schemas": {"method": "w_count"},
                "retry": retry,
            }
            for i in range(60)
        ]
        tree = await manager.submit(tasks)
        deadline = time.monotonic() + 60
        victim = None
        while victim is None:  # a worker that is running a task right now
            assert time.monotonic() < deadline, "no worker started anything"
            open_attempts: dict[tuple[str, int], int] = {}
            for kind, task_id, attempt, pid, _ in workers.records():
                if kind == "start":
                    open_attempts[(task_id, attempt)] = pid
                else:
                    open_attempts.pop((task_id, attempt), None)
            victim = next(iter(open_attempts.values()), None)
            if victim is None:
                await asyncio.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        result = await manager.wait(tree.task.id, timeout=120)
    finally:
        workers.stop()
    assert result.status == "completed"
    assert {o.id: o.result["value"] for o in result.tasks} == _expected_values(tasks)
    by_task: dict[str, list[tuple[str, int, int, float]]] = defaultdict(list)
    for kind, task_id, attempt, pid, at in workers.records():
        by_task[task_id].append((kind, attempt, pid, at))
    repeated = {t for t, rows in by_task.items() if sum(k == "start" for k, *_ in rows) > 1}
    killed_attempts = {
        t
        for t, rows in by_task.items()
        if any(k == "start" and pid == victim for k, _, pid, _ in rows)
    }
    assert repeated, "the killed worker held tasks that had to run again"
    assert repeated <= killed_attempts, "only the killed worker's attempts may repeat"
    for task_id in repeated:
        later = [at for k, _, pid, at in by_task[task_id] if k == "start" and pid != victim]
        assert later and min(later) > killed_at, "no task ran on two workers at the same time"
        stored = result.task(task_id)
        assert stored.attempts >= 2


async def test_late_write_from_an_expired_lease_is_rejected(
    manager: TaskManager, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(tmp_path / "effects.log"))
    tree = await manager.submit(
        [
            {
                "id": "root",
                "name": "root",
                "schemas": {"method": "w_count"},
                "retry": {"max_attempts": 2},  # worker-A's lost attempt counts as one
            }
        ]
    )
    table = manager.storage.table.name  # type: ignore[attr-defined]
    conn = await connect(pg_url)
    try:
        cur = await conn.execute(claim_sql(table), {"n": 1, "owner": "worker-A", "lease": 0.1})
        claimed = await cur.fetchall()
        assert [r["id"] for r in claimed] == ["root"] and claimed[0]["attempts"] == 1
        await asyncio.sleep(0.3)
        worker_b = Worker(
            pg_url,
            registry=manager.registry,
            lease_seconds=5,
            poll_seconds=0.1,
            worker_id="worker-B",
        )
        runner = asyncio.create_task(worker_b.run())
        result = await manager.wait(tree.task.id, timeout=60)
        worker_b.stop()
        await runner
        assert result.status == "completed" and worker_b.stats.reclaimed == 1
        assert result.task("root").attempts == 2

        late = Worker(pg_url, registry=manager.registry, worker_id="worker-A")
        late._work = conn
        task = await manager.task_repository.get_task_by_id("root")
        assert task is not None
        await late._commit([_End(task, fence=1, status="failed", error="late")])
        assert late.stats.stale_writes == 1
        cur = await conn.execute(
            finish_sql(table),
            {
                "owner": "worker-A",
                "ids": ["root"],
                "fences": [1],
                "statuses": ["failed"],
                "results": [None],
                "errors": ["late"],
                "run_after": [None],
                "requeue": [False],
            },
        )
        assert await cur.fetchall() == []
        stored = await manager.task_repository.get_task_by_id("root")
        assert stored is not None and stored.status == "completed" and stored.error is None
    finally:
        await conn.close()


async def test_cancellation_reaches_a_task_running_on_another_worker(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    workers.start(1, concurrency=2)
    try:
        tree = await manager.submit(
            [
                {"id": "root", "name": "root", "schemas": {"method": "w_block"}},
                {
                    "id": "after",
                    "name": "after",
                    "parent_id": "root",
                    "dependencies": ["root"],
                    "schemas": {"method": "w_count"},
                },
            ]
        )
        deadline = time.monotonic() + 60
        while not any(k == "start" for k, *_ in workers.records()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        events: list[Any] = []

        async def watch() -> None:
            async for event in manager.stream(tree.task.id):
                events.append(event)

        watcher = asyncio.create_task(watch())
        assert await manager.cancel_tree(tree.task.id) == ["after", "root"]
        result = await manager.wait(tree.task.id, timeout=60)
        await asyncio.wait_for(watcher, 30)
    finally:
        workers.stop()
    assert {o.id: o.status for o in result.tasks} == {"root": "cancelled", "after": "cancelled"}
    assert events[-1].kind == "tree_finished" and events[-1].status == "cancelled"


async def test_events_stream_to_another_process(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    tree = await manager.submit(
        [
            {"id": "root", "name": "root", "schemas": {"method": "w_count"}},
            {
                "id": "a",
                "name": "a",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "w_count"},
                "inputs": {"sleep": 0.05},
            },
        ]
    )
    events: list[Any] = []

    async def watch() -> None:
        async for event in manager.stream(tree.task.id):
            events.append(event)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    workers.start(1)
    try:
        await asyncio.wait_for(watcher, 60)
    finally:
        workers.stop()
    seen = [(e.task_id, e.status) for e in events if e.kind == "task_status"]
    assert seen.index(("root", "completed")) < seen.index(("a", "in_progress"))
    assert ("a", "completed") in seen
    assert events[-1].kind == "tree_finished" and events[-1].status == "completed"


async def test_bad_configuration_gives_one_clear_line(pg_url: str) -> None:
    with pytest.raises(StorageError) as info:
        await Worker("postgresql://postgres@127.0.0.1:1/nowhere").run()
    assert str(info.value) == (
        "cannot connect to postgresql://postgres@127.0.0.1:1/nowhere: Connection refused"
    )
    assert "\n" not in str(info.value)
    with pytest.raises(StorageError) as info:
        await Worker(pg_url.replace("postgres@", "nobody:hunter2@")).run()
    assert "hunter2" not in str(info.value) and "nobody:***@" in str(info.value)
    assert str(info.value).endswith('password authentication failed for user "nobody"') or str(
        info.value
    ).endswith('role "nobody" does not exist')
    with pytest.raises(ConfigurationError) as cfg:
        await Worker("duckdb:///x.duckdb").run()
    assert str(cfg.value).startswith("workers and queued trees need PostgreSQL")
    script = (
        "import sys, asyncio; sys.modules['psycopg'] = None\n"
        "from aipartnerupflow.core.worker import Worker\n"
        "from aipartnerupflow.core.errors import ConfigurationError\n"
        "try:\n    asyncio.run(Worker('postgresql://x@127.0.0.1/y').run())\n"
        "except ConfigurationError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        'PostgreSQL needs the psycopg driver: pip install "aipartnerupflow[postgres]"'
    )


async def test_queued_trees_need_postgres(tmp_path: Path) -> None:
    async with TaskManager(create_session(f"duckdb:///{tmp_path / 'x.duckdb'}")) as tm:
        with pytest.raises(ConfigurationError) as info:
            await tm.submit([{"name": "root"}])
    assert "need PostgreSQL" in str(info.value)


async def test_worker_survives_losing_its_database_connections(
    manager: TaskManager, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDE_EFFECT_LOG", str(tmp_path / "effects.log"))
    tasks: list[dict[str, Any]] = [
        {"id": "root", "name": "root", "schemas": {"method": "w_count"}}
    ] + [
        {
            "id": f"t{i}",
            "name": f"t{i}",
            "parent_id": "root",
            "inputs": {"sleep": 0.05},
            "dependencies": [f"t{i - 1}"] if i else [],
            "schemas": {"method": "w_count"},
        }
        for i in range(30)
    ]
    worker = Worker(pg_url, registry=manager.registry, concurrency=4, poll_seconds=0.2)
    runner = asyncio.create_task(worker.run())
    tree = await manager.submit(tasks)
    while worker.stats.finished < 5:
        await asyncio.sleep(0.02)
    admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:  # what a database restart does to the worker's sessions
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'apflow-worker%'"
            )
        ).scalar()
    admin.dispose()
    assert killed == 2
    result = await manager.wait(tree.task.id, timeout=120)
    worker.stop()
    await asyncio.wait_for(runner, 60)
    assert result.status == "completed"
    assert {o.id: o.result["value"] for o in result.tasks} == _expected_values(tasks)
    ends = [
        line.split()[1]
        for line in (tmp_path / "effects.log").read_text().splitlines()
        if line.startswith("end ")
    ]
    assert sorted(ends) == sorted(t["id"] for t in tasks), "each task ran exactly once"


async def test_executor_limit_holds_across_all_workers(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    workers.env["AIPARTNERUPFLOW_EXECUTOR_LIMITS"] = "w_count=2"
    workers.start(3, concurrency=4)
    try:
        await workers.ready()
        tasks = [{"id": "root", "name": "root", "schemas": {"method": "w_count"}}] + [
            {
                "id": f"t{i}",
                "name": f"t{i}",
                "parent_id": "root",
                "inputs": {"sleep": 0.1},
                "schemas": {"method": "w_count"},
            }
            for i in range(30)
        ]
        tree = await manager.submit(tasks)
        result = await manager.wait(tree.task.id, timeout=120)
    finally:
        stats = workers.stop()
    assert result.status == "completed"
    assert all(o.attempts == 1 for o in result.tasks), "waiting for a slot is not an attempt"
    events = sorted((at, 1 if kind == "start" else -1) for kind, _, _, _, at in workers.records())
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    # several workers competed for the slots (per-worker limits would have allowed 6 at once)
    assert sum(1 for s in stats if s["claimed"]) >= 2, stats


def test_executor_limits_are_parsed_with_clear_errors() -> None:
    from aipartnerupflow.core.worker import parse_limits

    assert parse_limits("llm_executor=4, rest_executor=20") == {
        "llm_executor": 4,
        "rest_executor": 20,
    }
    with pytest.raises(ConfigurationError) as info:
        parse_limits("llm_executor=lots")
    assert str(info.value).startswith("bad executor limit 'llm_executor=lots': write executor_id=N")


async def test_worker_prepares_a_fresh_database(pg_url: str) -> None:
    worker = Worker(pg_url, poll_seconds=0.1)
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    worker.stop()
    await asyncio.wait_for(runner, 30)
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    assert "apflow_tasks" in sa.inspect(engine).get_table_names()
    engine.dispose()


async def test_processes_opening_a_fresh_database_at_once_do_not_collide(pg_url: str) -> None:
    stores = [create_session(pg_url) for _ in range(4)]
    try:
        await asyncio.gather(*(store.initialize() for store in stores))
    finally:
        for store in stores:
            await store.close()


async def test_every_tree_finished_by_two_workers_is_announced_exactly_once(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    """The last end batches of a tree, committed by two workers at once, must not each count
    the other's tasks as open (then nobody announces the end, and waiters fall back to
    polling)."""
    from aipartnerupflow.core.pgqueue import EVENTS_CHANNEL

    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    workers.start(2, concurrency=4)
    listener = await connect(pg_url)
    finished: list[str] = []

    async def listen() -> None:
        await listener.execute(f"LISTEN {EVENTS_CHANNEL}")
        async for note in listener.notifies():
            data = json.loads(note.payload)
            if data.get("k") == "tree_finished":
                finished.append(data["r"])

    watcher = asyncio.create_task(listen())
    roots: list[str] = []
    try:
        await workers.ready()
        for t in range(12):
            tasks = [{"id": f"r{t}", "name": "root", "schemas": {"method": "w_count"}}] + [
                {
                    "id": f"r{t}c{i}",
                    "name": f"c{i}",
                    "parent_id": f"r{t}",
                    "dependencies": [f"r{t}"],
                    "schemas": {"method": "w_count"},
                    "inputs": {"sleep": 0.002},
                }
                for i in range(24)
            ]
            roots.append((await manager.submit(tasks)).task.id)
        for root in roots:
            result = await manager.wait(root, timeout=120)
            assert result.status == "completed"
        deadline = time.monotonic() + 5
        while len(finished) < len(roots) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await listener.close()
        workers.stop()
    assert sorted(finished) == sorted(roots)  # each tree once: none missed, none twice


async def test_a_stream_misses_no_event_while_it_polls(
    manager: TaskManager, pg_url: str, plugin_dir: Path, tmp_path: Path
) -> None:
    """Notifications that arrive while the stream counts the open tasks on its listening
    connection are kept for it (psycopg lost them before 3.2.4, psycopg#962)."""
    from aipartnerupflow.core.queued import stream_tree

    tasks = [{"id": "root", "name": "root", "schemas": {"method": "w_count"}}] + [
        {
            "id": f"c{i}",
            "name": f"c{i}",
            "parent_id": "root",
            "dependencies": ["root"],
            "schemas": {"method": "w_count"},
            "inputs": {"sleep": 0.001},
        }
        for i in range(150)
    ]
    tree = await manager.submit(tasks)
    seen: set[str] = set()

    async def watch() -> None:  # polls every 2 ms: counts run while events arrive
        async for event in stream_tree(manager, tree.task.id, poll_seconds=0.002):
            if event.kind == "task_status" and event.status == "completed":
                seen.add(event.task_id)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    workers = Workers(pg_url, plugin_dir, tmp_path / "effects.log")
    workers.start(2, concurrency=4)
    try:
        await asyncio.wait_for(watcher, 120)
    finally:
        workers.stop()
    assert seen == {t["id"] for t in tasks}
