"""DBOS Transact scale-out on PostgreSQL: queue workers in their own processes.

    python benchmarks/peers/dbos_workers.py --throughput 2 [--tasks 2000]
    python benchmarks/peers/dbos_workers.py --latency

The shape of the docs' "Queue Worker" example: worker processes launch DBOS (each with its
own ``executor_id``) and listen on a queue; a ``DBOSClient`` enqueues the work.

* throughput: 2,001 no-op workflows enqueued by the client in one transaction
  (``enqueue_in_transaction``), to worker processes already launched and idle; the time from
  before the enqueue to the last ``completed_at``;
* latency: a chain of ``--links`` (200) no-op workflows across 2 workers, each enqueueing
  the next as its last act; ready-to-start is the time from the enqueue (``created_at``) to
  the claim (``started_at_epoch_ms``), both in the system database.

Every run gets a fresh database ``bench_dbos`` on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import postgres_database
from dbos import DBOS, DBOSClient, DBOSConfig

APP = "apflow-peer-bench"
QUEUE = "bench"
HERE = Path(__file__).resolve()


@DBOS.workflow()
def noop_workflow(i: int) -> None:
    return None


@DBOS.workflow()
def chain_link(i: int, n: int) -> None:
    if i + 1 < n:
        DBOS.enqueue_workflow(QUEUE, chain_link, i + 1, n)


def serve(url: str) -> None:
    """A worker process: launch, listen on the queue, run until SIGTERM."""
    config: DBOSConfig = {
        "name": APP,
        "system_database_url": url,
        "executor_id": f"worker-{os.getpid()}",
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(QUEUE)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    DBOS.destroy()


def _start_workers(url: str, n: int) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE), "--serve", url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a DBOS worker did not start")
    time.sleep(2.0)  # idle, as benchmarks/workers.py lets ours idle
    return procs


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def _wait_done(client: DBOSClient, url: str, n: int, timeout: float) -> list[tuple[Any, ...]]:
    """Poll (every 10 ms) until n workflows succeeded; their (created, started, completed) ms."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'"
            ).fetchone()
            if row is not None and row[0] >= n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{row[0] if row else 0} of {n} done after {timeout} s")
            time.sleep(0.01)
        return conn.execute(
            "SELECT created_at, started_at_epoch_ms, completed_at FROM dbos.workflow_status"
        ).fetchall()


def throughput(workers: int, tasks: int, timeout: float) -> dict[str, Any]:
    with postgres_database("bench_dbos") as url:
        procs = _start_workers(url, workers)
        try:
            client = DBOSClient(system_database_url=url)
            options: Any = {
                "queue_name": QUEUE,
                "workflow_name": "noop_workflow",
                "application_name": APP,
            }
            engine = client._sys_db.engine  # the client's own engine, on the system database
            start = time.time()
            with engine.begin() as conn:
                for i in range(tasks + 1):
                    client.enqueue_in_transaction(conn, options, i)
            rows = _wait_done(client, url, tasks + 1, timeout)
            client.destroy()
        finally:
            _stop(procs)
    seconds = max(r[2] for r in rows) / 1000 - start
    return {"workers": workers, "tasks": tasks + 1, "seconds": seconds}


def latency(links: int, timeout: float) -> dict[str, Any]:
    with postgres_database("bench_dbos") as url:
        procs = _start_workers(url, 2)
        try:
            client = DBOSClient(system_database_url=url)
            options: Any = {
                "queue_name": QUEUE,
                "workflow_name": "chain_link",
                "application_name": APP,
            }
            client.enqueue(options, 0, links)
            rows = _wait_done(client, url, links, timeout)
            client.destroy()
        finally:
            _stop(procs)
    waits = sorted((started - created) / 1000 for created, started, _ in rows)
    return {
        "p50_ms": statistics.median(waits) * 1000,
        "p95_ms": waits[int(len(waits) * 0.95) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--throughput", type=int, metavar="WORKERS")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--links", type=int, default=200, help="chain length for --latency")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    elif args.throughput:
        print(json.dumps(throughput(args.throughput, args.tasks, args.timeout)), flush=True)
    elif args.latency:
        print(json.dumps(latency(args.links, args.timeout)), flush=True)
    else:
        parser.error("one of --throughput WORKERS or --latency")


if __name__ == "__main__":
    main()
