"""Engine benchmarks: no-op executors on a fresh DuckDB file, creation plus execution.

Each workload runs in its own process (so peak RSS is per workload), after a one-task warm-up
tree (process start-up is the ``import`` row's business). Prints a table and, with
``--compare FILE``, the previous figures beside the new ones. ``--save FILE`` stores them.

    python benchmarks/run.py [--only NAME ...] [--compare benchmarks/baseline.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORKLOADS = [
    "fanout_1000",
    "fanout_10000",
    "chain_200",
    "dag_10x20",
    "sleepers_ready",
    "sleepers_released",
    "create_task_200",
    "import",
]
#: Issue 27's targets (the first release's were 4,000 tasks/s, 3 s / 300 MB, 0.4 s, 0.3 s,
#: 0.15 s).
TARGETS = {
    "fanout_1000": "≥ 20,000 tasks/s",
    "fanout_10000": "≤ 0.5 s, ≤ 150 MB",
    "chain_200": "≤ 0.02 s",
    "dag_10x20": "≤ 0.02 s",
    "sleepers_ready": "≤ 0.11 s",
    "sleepers_released": "≤ 0.11 s",
    "create_task_200": "≤ 1 ms per call",
    "import": "≤ 150 ms",
}


def _tasks(name: str) -> list[dict[str, Any]]:
    def task(ident: str, **extra: Any) -> dict[str, Any]:
        return {"id": ident, "name": ident, "schemas": {"method": "bench_noop"}, **extra}

    if name.startswith("fanout_"):
        n = int(name.split("_")[1])
        return [task("root")] + [task(f"t{i}", parent_id="root") for i in range(n)]
    if name == "chain_200":
        return [task("t0")] + [
            task(f"t{i}", parent_id="t0", dependencies=[f"t{i - 1}"]) for i in range(1, 200)
        ]
    if name == "dag_10x20":
        rng = random.Random(7)
        tasks = [task("root")]
        previous: list[str] = []
        for layer in range(10):
            current = []
            for j in range(20):
                ident = f"l{layer}_{j}"
                deps = rng.sample(previous, rng.choice([2, 3])) if previous else []
                tasks.append(task(ident, parent_id="root", dependencies=deps))
                current.append(ident)
            previous = current
        return tasks
    if name == "sleepers_ready":
        return [task("root")] + [
            {
                "id": f"s{i}",
                "name": f"s{i}",
                "parent_id": "root",
                "schemas": {"method": "bench_sleep"},
            }
            for i in range(50)
        ]
    if name == "sleepers_released":
        return [task("root")] + [
            {
                "id": f"s{i}",
                "name": f"s{i}",
                "parent_id": "root",
                "dependencies": ["root"],
                "schemas": {"method": "bench_sleep"},
            }
            for i in range(50)
        ]
    raise ValueError(name)


async def _one(name: str, db_url: str) -> dict[str, Any]:
    from aipartnerupflow import ExecutableTask, TaskManager, create_session
    from aipartnerupflow.core.registry import ExecutorRegistry

    class Noop(ExecutableTask):
        id = "bench_noop"

        async def execute(self, inputs: dict[str, Any]) -> Any:
            return None

    class Sleep(ExecutableTask):
        id = "bench_sleep"

        async def execute(self, inputs: dict[str, Any]) -> Any:
            await asyncio.sleep(0.1)
            return None

    registry = ExecutorRegistry()
    registry.register(Noop)
    registry.register(Sleep)
    store = create_session(db_url)
    await store.initialize()
    write_ahead = os.environ.get("APFLOW_BENCH_WRITE_BEHIND") != "1"
    tm = TaskManager(store, registry=registry, max_concurrency=64, write_ahead=write_ahead)
    # warm-up: one-time costs of a process (model building, first statements) are not the
    # engine's steady state; start-up is measured by the import row and the CLI benchmark
    await tm.run_tasks([{"name": "warm-up", "schemas": {"method": "bench_noop"}}])
    if name == "create_task_200":
        return await _create_tasks(tm, store, 200)
    tasks = _tasks(name)
    statements_before = getattr(store, "statements", 0)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = await tm.run_tasks(tasks)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    statements = getattr(store, "statements", 0) - statements_before
    await tm.close()
    assert result.status == "completed", result.status
    return {
        "seconds": seconds,
        "tasks": len(tasks),
        "tasks_per_s": len(tasks) / seconds,
        "sql_per_task": statements / len(tasks),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_seconds": cpu_seconds,
    }


async def _create_tasks(tm: Any, store: Any, n: int) -> dict[str, Any]:
    """The seed README's path: a root and ``n`` children, one awaited ``create_task`` each
    (durable when it returns), then the tree run."""
    repo = tm.task_repository
    statements_before = getattr(store, "statements", 0)
    start, cpu_start = time.perf_counter(), time.process_time()
    root = await repo.create_task("root", user_id="bench")
    for i in range(n):
        await repo.create_task(
            f"child {i}", user_id="bench", parent_id=root.id, schemas={"method": "bench_noop"}
        )
    created = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    statements = getattr(store, "statements", 0) - statements_before
    tree = await repo.build_task_tree(root.id)
    run_start = time.perf_counter()
    result = await tm.distribute_task_tree(tree)
    ran = time.perf_counter() - run_start
    await tm.close()
    assert result.status == "completed", result.status
    return {
        "seconds": created,
        "tasks": n + 1,
        "tasks_per_s": (n + 1) / created,
        "ms_per_call": created / (n + 1) * 1000,
        "run_seconds": ran,
        "cpu_seconds": cpu_seconds,
        "sql_per_task": statements / (n + 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


@contextlib.contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"apflow_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def _import_time() -> dict[str, Any]:
    best = min(_timed([sys.executable, "-c", "import aipartnerupflow"]) for _ in range(5))
    full = min(
        _timed([sys.executable, "-c", "from aipartnerupflow import TaskManager"]) for _ in range(5)
    )
    base = min(_timed([sys.executable, "-c", "pass"]) for _ in range(5))
    return {"seconds": best - base, "full_seconds": full - base}


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def _row(name: str, r: dict[str, Any]) -> str:
    if name == "import":
        return (
            f"| import | {r['seconds'] * 1000:.0f} ms (TaskManager: "
            f"{r['full_seconds'] * 1000:.0f} ms) | | | | {TARGETS[name]} |"
        )
    label = name
    if "ms_per_call" in r:
        label = f"{name} ({r['ms_per_call']:.2f} ms/call; run {r['run_seconds']:.3f} s)"
    return (
        f"| {label} | {r['seconds']:.3f} s | {r['tasks_per_s']:,.0f} | {r['sql_per_task']:.3f} "
        f"| {r['peak_rss_mb']:.0f} MB | {TARGETS[name]} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", nargs="*", default=WORKLOADS)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--save", type=Path)
    parser.add_argument(
        "--write-behind",
        action="store_true",
        help="TaskManager(write_ahead=False): attempt starts written behind, as before write-ahead",
    )
    args = parser.parse_args()
    if args.write_behind:
        os.environ["APFLOW_BENCH_WRITE_BEHIND"] = "1"
    if args.one:
        if args.backend == "postgres":
            with _postgres_database(args.postgres_url) as url:
                print(json.dumps(asyncio.run(_one(args.one, url))))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                print(json.dumps(asyncio.run(_one(args.one, f"duckdb:///{tmp}/bench.duckdb"))))
        return
    results: dict[str, Any] = {}
    for name in args.only:
        if name == "import":
            results[name] = _import_time()
            continue
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                name,
                "--backend",
                args.backend,
                "--postgres-url",
                args.postgres_url,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    previous = (
        json.loads(args.compare.read_text()) if args.compare and args.compare.exists() else {}
    )
    print(f"engine on {args.backend}")
    print("| workload | time | tasks/s | SQL statements/task | peak RSS | target |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(_row(name, r))
        if name in previous:
            print(_row(name, previous[name]).replace(f"| {name}", "| ↳ previous", 1))
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
