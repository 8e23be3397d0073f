"""Fault injection: the engine keeps its promises when processes die and values are hostile.

kill -9 at random points of large random trees (DuckDB file, PostgreSQL in-process, PostgreSQL
with two workers), resume, and check the invariants (see ``_faults.check_invariants``);
connections terminated by the server during a run; results and errors no store can hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session

from . import _faults
from ._faults import Report, check_invariants, random_tree, read_log
from .conftest import POSTGRES_URL

log = logging.getLogger("test_faults")
PLUGIN = ["fault_executors"]
PG = pytest.mark.postgres


@pytest.fixture
def fault_dir(tmp_path: Path) -> Path:
    _faults.write_modules(tmp_path)
    return tmp_path


@pytest.fixture
def registry(fault_dir: Path) -> Iterator[ExecutorRegistry]:
    sys.path.insert(0, str(fault_dir))
    try:
        import fault_executors  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(fault_dir))
    reg = ExecutorRegistry()
    for cls in (
        fault_executors.Effect,
        fault_executors.Hostile,
        fault_executors.Blocker,
        fault_executors.Poison,
    ):
        reg.register(cls)
    yield reg
    sys.modules.pop("fault_executors", None)


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A PostgreSQL database of its own (processes connect by URL)."""
    name = f"apflow_f_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


async def _stored(url: str, registry: ExecutorRegistry, root: str) -> dict[str, Any]:
    async with TaskManager(create_session(url), registry=registry) as tm:
        return {t.id: t for t in await tm.storage.get_tree(root)}


async def _kill_loop(
    directory: Path,
    url: str,
    registry: ExecutorRegistry,
    tasks: list[dict[str, Any]],
    crashes: int,
    seed: int,
) -> tuple[Report, dict[str, Any], list[tuple[str, int, int, float]]]:
    """Run the tree in a child process, kill -9 it at random moments, start it again (it
    resumes), until ``crashes`` crash points were tried; then let it finish."""
    rng = random.Random(seed)
    root = tasks[0]["id"]
    effects = directory / "effects.log"
    tasks_file = _faults.tree_file(directory, tasks)
    report = Report()
    ended_before: list[tuple[float, set[str]]] = []
    lines_before = 0
    cycles = 0
    while report.crash_points < crashes:
        cycles += 1
        assert cycles < crashes * 6, "the runner kept finishing before any crash point"
        proc = _faults.spawn_runner(directory, url, tasks_file, root, effects)
        left = max(1, crashes - report.crash_points)
        # targets average a quarter of what is left per crash, so the tree rarely ends first
        span = max(1, (len(tasks) - len(read_log(effects))) // (2 * left))
        killed = await asyncio.to_thread(_faults.kill_at_random, proc, rng, effects, report, span)
        if not killed:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
        else:
            proc.communicate()
        stored = await _stored(url, registry, root)
        if killed:
            lines = len(read_log(effects))
            report.kills_mid_run += lines > lines_before
            lines_before = lines
            done = {i for i, t in stored.items() if t.status in ("completed", "failed")}
            ended_before.append((time.time(), done))
        if stored and all(t.status == "completed" for t in stored.values()):
            break  # finished: nothing left to crash
    proc = _faults.spawn_runner(directory, url, tasks_file, root, effects)
    _, err = await asyncio.to_thread(proc.communicate)
    assert proc.returncode == 0, err
    stored = await _stored(url, registry, root)
    if any(t.status != "completed" for t in stored.values()):
        # Only a run whose first start was never committed may be invisible to resume.
        async with TaskManager(create_session(url), registry=registry) as tm:
            found = await tm.storage.interrupted_roots([])
            if root not in found:
                report.violations += [] if not read_log(effects) else ["resume missed a tree"]
                await tm.execute_tree(root)
        stored = await _stored(url, registry, root)
    rows = read_log(effects)
    check_invariants(tasks, stored, rows, crashes + 1, ended_before, report)
    return report, stored, rows


@pytest.mark.slow
async def test_kill_minus_9_at_random_points_duckdb_2000_tasks(
    fault_dir: Path, registry: ExecutorRegistry
) -> None:
    crashes = 20
    tasks = random_tree(random.Random(12), 2000, crashes + 1, "d")
    url = f"duckdb:///{fault_dir / 'faults.duckdb'}"
    report, _, rows = await _kill_loop(fault_dir, url, registry, tasks, crashes, seed=12)
    print(report.summary("duckdb, 2,000 tasks"))
    assert report.crash_points >= crashes * 3 // 4  # the tree may finish before the last ones
    assert report.kills_mid_run >= 1, report.lines_at_kill
    assert report.violations == []
    assert len(rows) >= len(tasks)


@pytest.mark.slow
async def test_kill_at_the_journal_crash_points_duckdb_2000_tasks(
    fault_dir: Path, registry: ExecutorRegistry
) -> None:
    """The process dies at the journal's own critical moments (a torn append, right after an
    append, between a checkpoint's commit and emptying the journal, in the middle of a replay)
    and at random moments; the invariants hold for the durable state seen at each crash."""
    rng = random.Random(27)
    crashes = 24
    tasks = random_tree(rng, 2000, crashes + 1, "j")
    root = tasks[0]["id"]
    database = fault_dir / "journal.duckdb"
    url = f"duckdb:///{database}"
    effects = fault_dir / "effects.log"
    tasks_file = _faults.tree_file(fault_dir, tasks)
    report = Report()
    ended_before: list[tuple[float, set[str]]] = []
    by_point: dict[str, int] = {}
    env = {"FAULT_CHECKPOINT_BYTES": str(64 * 1024)}
    lines_before = 0
    for cycle in range(crashes * 3):
        if report.crash_points >= crashes:
            break
        if _faults.journal_records(database) and rng.random() < 0.3:
            point = f"{rng.choice(_faults.REPLAY_POINTS)}:1"
        elif rng.random() < 0.75:
            name = rng.choice(list(_faults.JOURNAL_POINTS))
            low, high = _faults.JOURNAL_POINTS[name]
            point = f"{name}:{rng.randint(low, high)}"
        else:
            point = ""  # a SIGKILL from outside at a random moment
        proc = _faults.spawn_runner(
            fault_dir, url, tasks_file, root, effects, {**env, "_APFLOW_CRASH_AT": point}
        )
        if point:
            _, err = await asyncio.to_thread(proc.communicate)
            killed = proc.returncode == -signal.SIGKILL
            if killed:
                report.crash_points += 1
            else:
                assert proc.returncode == 0, err
        else:
            span = max(1, 2 * (len(tasks) - len(read_log(effects))) // crashes)
            killed = await asyncio.to_thread(
                _faults.kill_at_random, proc, rng, effects, report, span
            )
            proc.communicate()
            if not killed:
                assert proc.returncode == 0
        if killed:
            lines = len(read_log(effects))
            report.kills_mid_run += lines > lines_before
            lines_before = lines
            label = point.split(":")[0] or "random SIGKILL"
            by_point[label] = by_point.get(label, 0) + 1
            copy = _faults.snapshot_duckdb(database, fault_dir / f"seen{cycle}")
            stored = await _stored(f"duckdb:///{copy}", registry, root)
            done = {i for i, t in stored.items() if t.status in ("completed", "failed")}
            ended_before.append((time.time(), done))
            if stored and all(t.status == "completed" for t in stored.values()):
                break
        else:
            break  # the run finished
    proc = _faults.spawn_runner(fault_dir, url, tasks_file, root, effects, env)
    _, err = await asyncio.to_thread(proc.communicate)
    assert proc.returncode == 0, err
    stored = await _stored(url, registry, root)
    if any(t.status != "completed" for t in stored.values()):
        async with TaskManager(create_session(url), registry=registry) as tm:
            if root not in await tm.storage.interrupted_roots([]):
                report.violations += [] if not read_log(effects) else ["resume missed a tree"]
                await tm.execute_tree(root)
        stored = await _stored(url, registry, root)
    rows = read_log(effects)
    check_invariants(tasks, stored, rows, crashes + 1, ended_before, report)
    print(report.summary("duckdb journal crash points, 2,000 tasks"), by_point)
    assert report.crash_points >= crashes * 3 // 4, by_point
    assert len(by_point) >= 4, by_point  # most kinds of crash point were reached
    assert report.kills_mid_run >= crashes // 3, report.lines_at_kill
    assert report.violations == []
    assert len(stored) == len(tasks)


@pytest.mark.slow
@pytest.mark.postgres
async def test_kill_minus_9_at_random_points_postgres_in_process(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str
) -> None:
    crashes = 10
    tasks = random_tree(random.Random(7), 1000, crashes + 1, "p")
    report, _, _ = await _kill_loop(fault_dir, pg_db, registry, tasks, crashes, seed=7)
    print(report.summary("postgres in-process, 1,000 tasks"))
    assert report.crash_points >= crashes * 3 // 4
    assert report.violations == []


class _Workers:
    """Worker processes that the test kills and restarts (a supervisor)."""

    def __init__(self, url: str, directory: Path, effects: Path, lease: float) -> None:
        self.url = url
        self.env = {
            **os.environ,
            "PYTHONPATH": str(directory),
            "FAULT_LOG": str(effects),
            "AIPARTNERUPFLOW_LEASE_SECONDS": str(lease),
        }
        self.procs: list[subprocess.Popen[str]] = []
        self.killed: list[int] = []

    def spawn(self) -> None:
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "aipartnerupflow.core.worker", self.url, "8", *PLUGIN],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )

    def supervise(self, n: int) -> None:
        """Keep ``n`` workers alive."""
        alive = [p for p in self.procs if p.poll() is None]
        for proc in self.procs:
            if proc.poll() is not None and proc.pid not in self.killed:
                self.killed.append(proc.pid)  # died by itself (a poison pill)
        self.procs = alive
        while len(self.procs) < n:
            self.spawn()

    def kill_one(self, rng: random.Random) -> int:
        proc = rng.choice(self.procs)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.killed.append(proc.pid)
        return proc.pid

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _queued_open(tm: TaskManager, root: str) -> int:
    rows = await tm.storage.get_tree(root)
    return sum(1 for t in rows if t.status not in ("completed", "failed", "cancelled"))


@pytest.mark.slow
@pytest.mark.postgres
async def test_kill_minus_9_workers_at_random_points(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str
) -> None:
    crashes = 8
    rng = random.Random(5)
    tasks = random_tree(rng, 2000, crashes + 1, "w")
    for t in tasks:
        t["inputs"] = {"jitter": 0.02}
    effects = fault_dir / "effects.log"
    workers = _Workers(pg_db, fault_dir, effects, lease=1.0)
    report = Report()
    ended_before: list[tuple[float, set[str]]] = []
    async with TaskManager(create_session(pg_db), registry=registry) as tm:
        await tm.storage.initialize()
        workers.supervise(2)
        tree = await tm.submit(tasks)
        root = tree.task.id
        deadline = time.monotonic() + 150
        try:
            while await _queued_open(tm, root):
                assert time.monotonic() < deadline, "the queued tree did not finish"
                if report.crash_points < crashes:
                    # after a random number of further executor calls, spread so that the
                    # crashes fall before the tree ends however fast the workers are
                    left = crashes - report.crash_points
                    done_lines = _faults._lines(effects)
                    span = max(1, (len(tasks) - done_lines) // (2 * left))
                    target = done_lines + rng.randint(1, span)
                    while _faults._lines(effects) < target and time.monotonic() < deadline:
                        await asyncio.sleep(0.005)
                    if not await _queued_open(tm, root):
                        break
                    workers.kill_one(rng)
                    report.crash_points += 1
                    report.lines_at_kill.append(len(read_log(effects)))
                    report.kills_mid_run += 1
                    rows = await tm.storage.get_tree(root)
                    done = {t.id for t in rows if t.status in ("completed", "failed")}
                    ended_before.append((time.time(), done))
                    workers.supervise(2)
                else:
                    await asyncio.sleep(0.2)
                    workers.supervise(2)
        finally:
            workers.stop()
        stored = {t.id: t for t in await tm.storage.get_tree(root)}
    log_rows = read_log(effects)
    check_invariants(tasks, stored, log_rows, crashes + 1, ended_before, report)
    # Re-runs only for attempts a killed worker held.
    killed = set(workers.killed)
    first: dict[str, tuple[int, int]] = {}
    for task_id, attempt, pid, _ in log_rows:
        if task_id in first and first[task_id][1] not in killed:
            report.violations.append(f"{task_id} ran again although its worker was not killed")
        first[task_id] = (attempt, pid)
    print(report.summary("postgres, 2 workers, 2,000 tasks"))
    assert report.crash_points == crashes
    assert report.violations == []


@pytest.mark.postgres
async def test_poison_pill_ends_failed_after_max_attempts(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str
) -> None:
    effects = fault_dir / "effects.log"
    workers = _Workers(pg_db, fault_dir, effects, lease=0.6)
    tasks: list[dict[str, Any]] = [
        {"id": "root", "name": "root", "schemas": {"method": "fault_effect"}},
        {
            "id": "pill",
            "name": "pill",
            "parent_id": "root",
            "schemas": {"method": "fault_poison"},
            "retry": {"max_attempts": 3},
        },
        {
            "id": "after",
            "name": "after",
            "parent_id": "root",
            "dependencies": [{"id": "pill", "required": False}],
            "schemas": {"method": "fault_effect"},
        },
    ]
    async with TaskManager(create_session(pg_db), registry=registry) as tm:
        await tm.storage.initialize()
        workers.supervise(2)
        tree = await tm.submit(tasks)
        deadline = time.monotonic() + 90
        try:
            while await _queued_open(tm, tree.task.id):
                assert time.monotonic() < deadline, "the poison pill kept the tree open"
                workers.supervise(2)
                await asyncio.sleep(0.1)
        finally:
            workers.stop()
        pill = await tm.storage.get_task("pill")
        after = await tm.storage.get_task("after")
    assert pill is not None and pill.status == "failed"
    assert pill.error is not None and "worker lost 3 time(s)" in pill.error
    assert pill.attempts == 3
    assert [a for t, a, _, _ in read_log(effects) if t == "pill"] == [1, 2, 3]
    assert after is not None and after.status == "completed"


@pytest.mark.postgres
async def test_worker_with_a_blocked_event_loop_keeps_its_lease(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str
) -> None:
    effects = fault_dir / "effects.log"
    workers = _Workers(pg_db, fault_dir, effects, lease=0.6)
    tasks = [
        {
            "id": "slow",
            "name": "slow",
            "schemas": {"method": "fault_blocker"},
            "inputs": {"seconds": 2.5},  # four leases long
        }
    ]
    async with TaskManager(create_session(pg_db), registry=registry) as tm:
        await tm.storage.initialize()
        workers.supervise(2)
        try:
            tree = await tm.submit(tasks)
            result = await tm.wait(tree.task.id, timeout=60)
        finally:
            workers.stop()
    assert result.status == "completed"
    assert [(t, a) for t, a, _, _ in read_log(effects)] == [("slow", 1)]
    assert result.task("slow").attempts == 1


HOSTILE = ["deep", "nan", "inf", "nul", "surrogate", "huge", "object", "nul_error", "huge_error"]
EXPECTED = {
    "deep": "nested more than 200 levels",
    "nan": "nan",
    "inf": "inf",
    "nul": "NUL",
    "surrogate": "surrogate",
    "huge": "more than the limit",
    "object": "object",
}


def _hostile_tree(innocents: int) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = [
        {"id": "root", "name": "root", "schemas": {"method": "fault_effect"}}
    ]
    for kind in HOSTILE:
        tasks.append(
            {
                "id": f"h_{kind}",
                "name": kind,
                "parent_id": "root",
                "schemas": {"method": "fault_hostile"},
                "inputs": {"kind": kind},
            }
        )
    for i in range(innocents):
        tasks.append(
            {
                "id": f"ok{i}",
                "name": f"ok{i}",
                "parent_id": "root",
                "schemas": {"method": "fault_effect"},
            }
        )
    return tasks


def _check_hostile(stored: dict[str, Any], innocents: int) -> None:
    for kind in HOSTILE:
        task = stored[f"h_{kind}"]
        assert task.status == "failed", (kind, task.status)
        assert task.error and "\x00" not in task.error, kind
        if kind in EXPECTED:
            assert EXPECTED[kind] in task.error, (kind, task.error)
        assert len(task.error) <= 10_000
    assert "\\x00" in stored["h_nul_error"].error
    for i in range(innocents):
        assert stored[f"ok{i}"].status == "completed", stored[f"ok{i}"].error
        assert stored[f"ok{i}"].result == {"n": 1}


@pytest.mark.parametrize(
    "backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_hostile_results_fail_only_their_task(
    fault_dir: Path,
    registry: ExecutorRegistry,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("FAULT_LOG", str(fault_dir / "effects.log"))
    monkeypatch.setenv("AIPARTNERUPFLOW_MAX_RESULT_BYTES", "100000")
    url = (
        f"duckdb:///{fault_dir / 'h.duckdb'}"
        if backend == "duckdb"
        else request.getfixturevalue("pg_db")
    )
    async with TaskManager(create_session(url), registry=registry) as tm:
        result = await asyncio.wait_for(tm.run_tasks(_hostile_tree(40)), 60)
    assert result.status == "failed"
    stored = await _stored(url, registry, "root")
    _check_hostile(stored, 40)
    assert {o.id: o.status for o in result.tasks} == {i: t.status for i, t in stored.items()}


@pytest.mark.postgres
async def test_hostile_results_on_workers_fail_only_their_task(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str
) -> None:
    effects = fault_dir / "effects.log"
    workers = _Workers(pg_db, fault_dir, effects, lease=5.0)
    workers.env["AIPARTNERUPFLOW_MAX_RESULT_BYTES"] = "100000"
    async with TaskManager(create_session(pg_db), registry=registry) as tm:
        await tm.storage.initialize()
        workers.supervise(2)
        try:
            tree = await tm.submit(_hostile_tree(40))
            await tm.wait(tree.task.id, timeout=60)
        finally:
            workers.stop()
        stored = {t.id: t for t in await tm.storage.get_tree("root")}
    _check_hostile(stored, 40)
    calls = [(t, a) for t, a, _, _ in read_log(effects)]
    assert len(calls) == len(set(calls)) == len(stored), "nothing ran twice"


async def test_store_isolates_a_row_it_cannot_write(
    tmp_path: Path, registry: ExecutorRegistry
) -> None:
    """A value that slips past every check fails only its own row of the batch."""
    store = create_session(f"duckdb:///{tmp_path / 'iso.duckdb'}")
    effect = {"method": "fault_effect"}  # the tree is only stored, never run
    async with TaskManager(store, registry=registry) as tm:
        tree = await tm.create_task_tree_from_array(
            [{"id": "root", "name": "root"}]
            + [
                {"id": f"c{i}", "name": f"c{i}", "parent_id": "root", "schemas": effect}
                for i in range(20)
            ]
        )
        assert tree.task.id == "root"
        for i in range(20):
            store.write_behind(f"c{i}", {"status": "completed", "result": {"i": i}})
        store.write_behind("c7", {"result": {"x": float("nan")}})
        await store.flush()
        rows = {t.id: t for t in await store.get_tree("root")}
    assert rows["c7"].status == "failed"
    assert rows["c7"].error and "could not be stored" in rows["c7"].error
    assert all(rows[f"c{i}"].status == "completed" for i in range(20) if i != 7)


@pytest.mark.parametrize("retry", ["x", {"max_attempts": "x"}, {"max_attempts": 0}])
async def test_a_bad_retry_setting_fails_its_task_and_frees_its_slot(
    tmp_path: Path, registry: ExecutorRegistry, retry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_LOG", str(tmp_path / "effects.log"))
    url = f"duckdb:///{tmp_path / 'r.duckdb'}"
    async with TaskManager(create_session(url), registry=registry, max_concurrency=1) as tm:
        tree = await tm.create_task_tree_from_array(
            [
                {"id": "root", "name": "root", "schemas": {"method": "fault_effect"}},
                {
                    "id": "bad",
                    "name": "bad",
                    "parent_id": "root",
                    "schemas": {"method": "fault_effect"},
                },
            ]
        )
        await tm.storage.update_task("bad", {"retry": retry})  # as tasks.update could
        result = await asyncio.wait_for(tm.execute_tree(tree.task.id), 30)
        assert result.task("bad").status == "failed"
        assert "retry" in (result.task("bad").error or "")
        assert result.task("root").status == "completed"
        again = await asyncio.wait_for(tm.execute_tree(tree.task.id, rerun="failed"), 30)
        assert again.task("bad").status == "failed"


async def test_a_1000_task_aggregate_chain_ends(tmp_path: Path) -> None:
    """Each result nests the one before; where nesting gets too deep, that task fails with
    the reason and everything after it ends (it does not hang)."""
    tasks: list[dict[str, Any]] = [
        {"id": "c0", "name": "c0", "schemas": {"method": "aggregate_results_executor"}}
    ]
    for i in range(1, 1000):
        tasks.append(
            {
                "id": f"c{i}",
                "name": f"c{i}",
                "parent_id": "c0",
                "dependencies": [f"c{i - 1}"] if i > 1 else [],
                "schemas": {"method": "aggregate_results_executor"},
            }
        )
    async with TaskManager(create_session(f"duckdb:///{tmp_path / 'a.duckdb'}")) as tm:
        result = await asyncio.wait_for(tm.run_tasks(tasks), 120)
    failed = [o for o in result.tasks if o.status == "failed"]
    assert all(o.status in ("completed", "failed") for o in result.tasks)
    assert failed and "nested more than" in (failed[0].error or "")


@pytest.mark.postgres
async def test_in_process_run_survives_terminated_connections(
    fault_dir: Path, registry: ExecutorRegistry, pg_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAULT_LOG", str(fault_dir / "effects.log"))
    name = pg_db.rsplit("/", 1)[1]
    admin = sa.create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    tasks = random_tree(random.Random(3), 600, 1, "k")
    for t in tasks:
        t["inputs"] = {"jitter": 0.02}
    kills = 0

    effects = fault_dir / "effects.log"

    async def killer() -> None:
        nonlocal kills
        while not effects.exists():  # the run has begun (the tree is stored)
            await asyncio.sleep(0.01)
        while True:
            await asyncio.sleep(0.2)

            def kill() -> int:
                with admin.connect() as conn:
                    return len(
                        conn.execute(
                            sa.text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :d AND pid <> pg_backend_pid()"
                            ),
                            {"d": name},
                        ).all()
                    )

            kills += await asyncio.to_thread(kill)

    try:
        async with TaskManager(create_session(pg_db), registry=registry) as tm:
            await tm.storage.initialize()
            job = asyncio.create_task(killer())
            try:
                result = await asyncio.wait_for(tm.run_tasks(tasks), 120)
            finally:
                job.cancel()
        stored = await _stored(pg_db, registry, tasks[0]["id"])
    finally:
        admin.dispose()
    print(f"postgres in-process: {kills} connections terminated during the run")
    assert kills >= 1
    assert result.status == "completed"
    assert all(t.status == "completed" for t in stored.values())
    calls = [(t, a) for t, a, _, _ in read_log(fault_dir / "effects.log")]
    assert len(calls) == len(set(calls)) == len(tasks), "every task ran once"
