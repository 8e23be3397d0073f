"""The fault-injection harness: random trees, effect logs, kill -9 loops and the invariants.

Executors append ``task_id attempt pid time`` to a log file with ``O_APPEND`` (one ``write``
per line, so lines from concurrent processes never mix) before they do anything else, so the
log holds every executor call, including those whose end was never stored.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXECUTORS = textwrap.dedent('''
    import asyncio, math, os, random, time
    from aipartnerupflow import ExecutableTask, executor_register

    def record(ctx):
        line = f"{ctx.task_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\\n"
        fd = os.open(os.environ["FAULT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @executor_register(override=True)
    class Effect(ExecutableTask):
        """Logs its call, waits a few milliseconds, returns a small result."""
        id = "fault_effect"

        async def execute(self, inputs):
            record(self.context)
            await asyncio.sleep(random.random() * float(inputs.get("jitter", 0.004)))
            return {"n": 1}

    @executor_register(override=True)
    class Hostile(ExecutableTask):
        """Returns (or raises with) a value a task store cannot hold as it is."""
        id = "fault_hostile"

        async def execute(self, inputs):
            record(self.context)
            kind = inputs["kind"]
            if kind == "deep":
                value = None
                for _ in range(1000):
                    value = [value]
                return {"deep": value}
            if kind == "nan":
                return {"x": math.nan}
            if kind == "inf":
                return [math.inf]
            if kind == "nul":
                return {"text": "a\\x00b"}
            if kind == "surrogate":
                return {"text": "\\ud800"}
            if kind == "huge":
                return {"blob": "x" * 300_000}
            if kind == "object":
                return {"when": object()}
            if kind == "nul_error":
                raise RuntimeError("bad\\x00byte from a remote server")
            if kind == "huge_error":
                raise RuntimeError("e" * 200_000)
            raise ValueError(kind)

    @executor_register(override=True)
    class Blocker(ExecutableTask):
        """Blocks its event loop (a blocking SDK call made the wrong way)."""
        id = "fault_blocker"

        async def execute(self, inputs):
            record(self.context)
            time.sleep(float(inputs["seconds"]))
            return {"blocked": True}

    @executor_register(override=True)
    class Poison(ExecutableTask):
        """Kills the process that runs it."""
        id = "fault_poison"

        async def execute(self, inputs):
            record(self.context)
            os.kill(os.getpid(), 9)
''')

RUNNER = textwrap.dedent("""
    import asyncio, json, os, sys
    import fault_executors  # noqa: F401  (registers the executors)
    from aipartnerupflow import TaskManager, create_session
    from aipartnerupflow.core.storage import deferred

    # Small checkpoints, so the journal's commit-then-empty moment comes during runs too.
    if os.environ.get("FAULT_CHECKPOINT_BYTES"):
        deferred.CHECKPOINT_BYTES = int(os.environ["FAULT_CHECKPOINT_BYTES"])

    async def main():
        url, tasks_file, root = sys.argv[1], sys.argv[2], sys.argv[3]
        async with TaskManager(create_session(url), max_concurrency=16) as tm:
            if await tm.storage.get_task(root) is None:
                tasks = json.loads(open(tasks_file).read())
                await tm.run_tasks(tasks)
            else:
                await tm.resume_interrupted()
                if tm.resume_errors:
                    print(json.dumps(tm.resume_errors), file=sys.stderr)
                    sys.exit(3)

    asyncio.run(main())
""")


def write_modules(directory: Path) -> None:
    (directory / "fault_executors.py").write_text(EXECUTORS)
    (directory / "fault_runner.py").write_text(RUNNER)


def random_tree(rng: random.Random, n: int, max_attempts: int, prefix: str) -> list[dict[str, Any]]:
    """A root and ``n`` tasks in random segments: fan-outs, chains and random DAG layers."""
    root = f"{prefix}root"
    tasks: list[dict[str, Any]] = [_task(root, None, [], max_attempts)]
    ids: list[str] = [root]
    while len(tasks) <= n:
        shape = rng.choice(["fanout", "chain", "dag"])
        size = min(n + 1 - len(tasks), rng.randint(5, 120))
        start = len(ids)
        for k in range(size):
            task_id = f"{prefix}t{len(ids)}"
            if shape == "fanout":
                deps = [ids[start - 1]] if start > 1 and rng.random() < 0.9 else []
            elif shape == "chain":
                deps = [ids[-1]] if k else ([ids[start - 1]] if start > 1 else [])
            else:
                pool = ids[max(1, len(ids) - 60) :]
                deps = sorted(set(rng.sample(pool, min(len(pool), rng.randint(0, 3)))))
            tasks.append(_task(task_id, root, deps, max_attempts))
            ids.append(task_id)
    return tasks


def _task(task_id: str, parent: str | None, deps: list[str], max_attempts: int) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": task_id,
        "parent_id": parent,
        "dependencies": [{"id": d, "required": True} for d in deps],
        "schemas": {"method": "fault_effect"},
        "retry": {"max_attempts": max_attempts, "backoff_seconds": 0.01},
    }


def read_log(path: Path) -> list[tuple[str, int, int, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        task_id, attempt, pid, at = line.split()
        rows.append((task_id, int(attempt), int(pid), float(at)))
    return rows


@dataclass
class Report:
    """Crash points tried and invariant violations found, for the test and its log."""

    crash_points: int = 0
    kills_mid_run: int = 0
    lines_at_kill: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def summary(self, label: str) -> str:
        return (
            f"{label}: {self.crash_points} crash points ({self.kills_mid_run} with executors "
            f"already run; log lines at kill {sorted(self.lines_at_kill)}), "
            f"{len(self.violations)} invariant violations"
        )


def spawn_runner(
    directory: Path,
    url: str,
    tasks_file: Path,
    root: str,
    log: Path,
    extra_env: dict[str, str] | None = None,
) -> Any:
    env = {**os.environ, "PYTHONPATH": str(directory), "FAULT_LOG": str(log), **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, str(directory / "fault_runner.py"), url, str(tasks_file), root],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(log: Path) -> int:
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_at_random(
    proc: Any, rng: random.Random, log: Path, report: Report, total: int, timeout: float = 30.0
) -> bool:
    """SIGKILL ``proc`` at a random point; False when it ended first (no crash point).

    One kill in five comes at a random moment of the first 0.8 s (start-up, creating the tree,
    resuming) or after ``total`` further executor calls, whichever is first; the others after
    a random number (1 to ``total``) of further executor calls.
    """
    before = _lines(log)
    deadline = time.monotonic() + timeout
    if rng.random() < 0.2:
        deadline = time.monotonic() + rng.uniform(0.0, 0.8)
        target = before + max(1, total)
    else:
        target = before + rng.randint(1, max(1, total))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _lines(log) >= target:
            break
        time.sleep(0.001)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    report.crash_points += 1
    report.lines_at_kill.append(_lines(log))
    return True


def check_invariants(
    tasks: list[dict[str, Any]],
    stored: dict[str, Any],
    log_rows: list[tuple[str, int, int, float]],
    max_attempts: int,
    ended_before: list[tuple[float, set[str]]],
    report: Report,
) -> None:
    """Every task ended and completed, none lost, attempts unique and counted and bounded, and
    a task whose end was durable at a crash never ran after it."""
    bad = report.violations
    calls: dict[str, list[int]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for task_id, attempt, _, _ in log_rows:
        if (task_id, attempt) in seen:
            bad.append(f"attempt {attempt} of {task_id} was handed out twice")
        seen.add((task_id, attempt))
        calls[task_id].append(attempt)
    for t in tasks:
        row = stored.get(t["id"])
        if row is None:
            bad.append(f"task {t['id']} was lost")
            continue
        if row.status != "completed":
            bad.append(f"task {t['id']} ended {row.status}: {row.error}")
        if row.attempts > max_attempts:
            bad.append(f"task {t['id']} has {row.attempts} attempts > max_attempts")
        ran = calls.get(t["id"], [])
        if not ran:
            bad.append(f"task {t['id']} completed without its executor running")
        if len(ran) > max_attempts:
            bad.append(f"task {t['id']} ran {len(ran)} times > max_attempts")
        if ran and max(ran) > row.attempts:
            bad.append(f"task {t['id']} ran attempt {max(ran)} but counts {row.attempts}")
    for at, ended in ended_before:
        for task_id, attempt, _, when in log_rows:
            if task_id in ended and when > at:
                bad.append(f"task {task_id} ended durably before a crash but ran again ({attempt})")


def tree_file(directory: Path, tasks: list[dict[str, Any]]) -> Path:
    path = directory / "tree.json"
    path.write_text(json.dumps(tasks))
    return path


#: The journal's crash points (``aipartnerupflow.core.storage.journal.crash_point``) and how
#: many times each may be reached before the process dies there.
JOURNAL_POINTS: dict[str, tuple[int, int]] = {
    "journal.torn": (1, 15),
    "journal.appended": (1, 15),
    "journal.checkpoint.committed": (1, 4),
}
#: Points reached while opening a file whose journal holds records (after a crash).
REPLAY_POINTS = ("journal.replay.applied", "journal.replay.committed")


def snapshot_duckdb(database: Path, into: Path) -> Path:
    """Copy a DuckDB file with its WAL and journal, so a reader replays the copy's journal and
    leaves the original's for the next run."""
    into.mkdir(parents=True, exist_ok=True)
    copy = into / database.name
    for suffix in ("", ".wal", ".journal"):
        source = Path(f"{database}{suffix}")
        if source.exists():
            Path(f"{copy}{suffix}").write_bytes(source.read_bytes())
    return copy


def journal_records(database: Path) -> int:
    """How many records the journal of a DuckDB file holds (0 when it has none)."""
    from aipartnerupflow.core.storage.journal import Journal, journal_path

    path = journal_path(str(database))
    if not os.path.exists(path):
        return 0
    journal = Journal(str(snapshot_duckdb(database, database.parent / "peek")) + ".journal")
    try:
        return len(journal.open())
    finally:
        journal.close()
