"""Scale-out benchmarks on PostgreSQL: worker throughput and ready-to-start latency.

    python benchmarks/workers.py [--url postgresql://postgres@127.0.0.1:5432/postgres]

Throughput: a root with 2,000 no-op children, run by 1, 2 and 4 worker processes (already
started and idle). Latency: a chain of 200 no-op tasks on 2 workers; for each task, the time
from its dependency's commit (``completed_at``) to its claim (``started_at``), both stamped by
the database clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent


def _database(admin_url: str) -> tuple[str, Any]:
    name = f"apflow_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    return admin_url.rsplit("/", 1)[0] + f"/{name}", (admin, name)


def _drop(handle: Any) -> None:
    admin, name = handle
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _workers(url: str, n: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aipartnerupflow.core.worker",
                url,
                str(concurrency),
                "bench_executors",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)


async def _run(url: str, tasks: list[dict[str, Any]], n_workers: int) -> tuple[float, str]:
    sys.path.insert(0, str(HERE))
    import bench_executors  # noqa: F401

    from aipartnerupflow import TaskManager, create_session

    tm = TaskManager(create_session(url))
    await tm.storage.initialize()
    procs = _workers(url, n_workers, 32)
    await asyncio.sleep(2.0)  # let the workers start and idle
    try:
        start = time.perf_counter()
        tree = await tm.submit(tasks)
        result = await tm.wait(tree.task.id, timeout=600)
        seconds = time.perf_counter() - start
    finally:
        _stop(procs)
    await tm.close()
    assert result.status == "completed", result.status
    return seconds, tree.task.id


def _latencies(url: str) -> list[float]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM t.started_at - d.completed_at) FROM apflow_tasks t "
                "JOIN apflow_tasks d ON d.id = t.dependencies->0->>'id'"
            )
        ).all()
    engine.dispose()
    return [float(r[0]) for r in rows]


def fanout_tree(children: int) -> list[dict[str, Any]]:
    """A root and ``children`` no-op tasks under it (the throughput workload)."""
    return [{"id": "root", "name": "root", "schemas": {"method": "bench_noop"}}] + [
        {"id": f"t{i}", "name": f"t{i}", "parent_id": "root", "schemas": {"method": "bench_noop"}}
        for i in range(children)
    ]


def chain_tree(length: int) -> list[dict[str, Any]]:
    """``length`` no-op tasks, each depending on the one before (the latency workload)."""
    return [{"id": "t0", "name": "t0", "schemas": {"method": "bench_noop"}}] + [
        {
            "id": f"t{i}",
            "name": f"t{i}",
            "parent_id": "t0",
            "dependencies": [f"t{i - 1}"],
            "schemas": {"method": "bench_noop"},
        }
        for i in range(1, length)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    print("| workers | no-op tasks | time | tasks/s |")
    print("|---|---|---|---|")
    fanout = fanout_tree(args.tasks)
    for n in (1, 2, 4):
        url, handle = _database(args.url)
        try:
            seconds, _ = asyncio.run(_run(url, fanout, n))
        finally:
            _drop(handle)
        print(f"| {n} | {len(fanout):,} | {seconds:.2f} s | {len(fanout) / seconds:,.0f} |")
    chain = chain_tree(200)
    url, handle = _database(args.url)
    try:
        asyncio.run(_run(url, chain, 2))
        lat = sorted(_latencies(url))
    finally:
        _drop(handle)
    p50 = statistics.median(lat) * 1000
    p95 = lat[int(len(lat) * 0.95) - 1] * 1000
    print(
        f"\nready-to-start latency, chain of 200 on 2 workers: p50 {p50:.1f} ms, p95 {p95:.1f} ms"
    )


if __name__ == "__main__":
    main()
