"""Durable runs: kill -9 a real process mid-run, then resume from the store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from aipartnerupflow import ExecutableTask
from aipartnerupflow.core.errors import RetryableError
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session

EXECUTOR_MODULE = textwrap.dedent("""
    import asyncio, os
    from aipartnerupflow import ExecutableTask

    class SideEffect(ExecutableTask):
        id = "side_effect"

        async def execute(self, inputs):
            log = os.environ["SIDE_EFFECT_LOG"]
            ctx = self.context
            with open(log + ".ctx", "a") as fh:
                fh.write(f"{ctx.task_id} {ctx.attempt} {ctx.interrupted_attempt}\\n")
            with open(log, "a") as fh:
                fh.write(f"start {ctx.task_id} {ctx.attempt}\\n")
            await asyncio.sleep(float(inputs.get("sleep", 0.15)))
            with open(log, "a") as fh:
                fh.write(f"end {ctx.task_id} {ctx.attempt}\\n")
            return {"task": ctx.task_id}
""")

RUNNER = textwrap.dedent("""
    import asyncio, json, sys
    from aipartnerupflow import TaskManager, create_session
    from aipartnerupflow.core.registry import ExecutorRegistry
    from crash_executors import SideEffect

    async def main():
        reg = ExecutorRegistry()
        reg.register(SideEffect)
        tm = TaskManager(create_session(sys.argv[1]), registry=reg, max_concurrency=2)
        tasks = json.loads(sys.argv[2])
        await tm.run_tasks(tasks)

    asyncio.run(main())
""")


def _tasks(n: int) -> list[dict[str, object]]:
    tasks: list[dict[str, object]] = [
        {
            "id": "root",
            "name": "root",
            "schemas": {"method": "side_effect"},
            "retry": {"max_attempts": 3},
        }
    ]
    for i in range(n):
        deps = [f"t{i - 1}"] if i % 3 else []
        tasks.append(
            {
                "id": f"t{i}",
                "name": f"t{i}",
                "parent_id": "root",
                "dependencies": deps,
                "schemas": {"method": "side_effect"},
                "retry": {"max_attempts": 3},  # an interrupted attempt counts as one
            }
        )
    return tasks


def _log(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        kind, task_id, attempt = line.split()
        out.append((kind, task_id, int(attempt)))
    return out


async def test_killed_process_resumes_without_rerunning_finished_tasks(tmp_path: Path) -> None:
    (tmp_path / "crash_executors.py").write_text(EXECUTOR_MODULE)
    (tmp_path / "runner.py").write_text(RUNNER)
    db = f"duckdb:///{tmp_path / 'crash.duckdb'}"
    log = tmp_path / "effects.log"
    env = {**os.environ, "SIDE_EFFECT_LOG": str(log), "PYTHONPATH": str(tmp_path)}
    tasks = _tasks(18)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "runner.py"), db, json.dumps(tasks)],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while sum(1 for kind, *_ in _log(log) if kind == "end") < 6:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the runner made no progress"
        await asyncio.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stderr:
        proc.stderr.close()

    sys.path.insert(0, str(tmp_path))
    try:
        from crash_executors import SideEffect
    finally:
        sys.path.remove(str(tmp_path))
    os.environ["SIDE_EFFECT_LOG"] = str(log)
    reg = ExecutorRegistry()
    reg.register(SideEffect)
    async with TaskManager(create_session(db), registry=reg) as tm:
        before = {t.id: t for t in await tm.task_repository.get_all_tasks_in_tree("root")}
        done_before = {i for i, t in before.items() if t.status == "completed"}
        interrupted = {i for i, t in before.items() if t.status == "in_progress"}
        assert done_before and interrupted, (done_before, interrupted)
        events_before = len(_log(log))

        results = await tm.resume_interrupted()
        assert [r.root_id for r in results] == ["root"]
        assert results[0].status == "completed"
        after = {t.id: t for t in await tm.task_repository.get_all_tasks_in_tree("root")}
    del os.environ["SIDE_EFFECT_LOG"]

    assert all(t.status == "completed" for t in after.values())
    rerun = {task_id for kind, task_id, _ in _log(log)[events_before:] if kind == "start"}
    assert not rerun & done_before, "finished tasks must never run again"
    assert interrupted <= rerun
    for task_id in interrupted:
        assert after[task_id].attempts == before[task_id].attempts + 1
    ends = [task_id for kind, task_id, _ in _log(log) if kind == "end"]
    assert set(ends) == set(after)
    # the executor is told which attempt was interrupted, and only then
    told = {
        (task_id, int(attempt)): None if lost == "None" else int(lost)
        for task_id, attempt, lost in (
            line.split() for line in Path(f"{log}.ctx").read_text().splitlines()
        )
    }
    for (task_id, attempt), lost in told.items():
        if task_id in interrupted and attempt == after[task_id].attempts:
            assert lost == before[task_id].attempts, (task_id, attempt, lost)
        else:
            assert lost is None, (task_id, attempt, lost)


async def test_a_retry_in_the_same_process_is_not_an_interrupted_attempt() -> None:
    seen: list[tuple[int, int | None]] = []

    class FlakyOnce(ExecutableTask):
        id = "flaky_once_ctx"

        async def execute(self, inputs: dict[str, object]) -> dict[str, object]:
            ctx = self.context
            assert ctx is not None
            seen.append((ctx.attempt, ctx.interrupted_attempt))
            if ctx.attempt == 1:
                raise RetryableError("first try fails")
            return {}

    reg = ExecutorRegistry()
    reg.register(FlakyOnce)
    async with TaskManager(create_session("duckdb:///:memory:"), registry=reg) as tm:
        tree = await tm.run_tasks(
            [
                {
                    "id": "f",
                    "name": "f",
                    "schemas": {"method": "flaky_once_ctx"},
                    "retry": {"max_attempts": 2, "backoff_seconds": 0},
                }
            ]
        )
    assert tree.status == "completed"
    assert seen == [(1, None), (2, None)]


async def test_resume_with_nothing_interrupted_does_nothing(tmp_path: Path) -> None:
    async with TaskManager(create_session(f"duckdb:///{tmp_path / 'x.duckdb'}")) as tm:
        assert await tm.resume_interrupted() == []
