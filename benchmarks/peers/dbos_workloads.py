"""The peer workloads on DBOS Transact, written the way its docs show them.

    python benchmarks/peers/dbos_workloads.py --one fanout_1000 --db sqlite [--poll 0.01]

* fan-out: a parent workflow enqueues N no-op workflows on a queue and waits for every
  handle's result (the docs' "Queue Example");
* chain: one workflow calling N no-op steps one after the other (each step's output is
  checkpointed before the next starts);
* sleepers: a parent workflow enqueues 50 workflows whose one step sleeps 100 ms;
* cli_10: the fan-out with 9 children, for a whole-process run (``--no-warm-up --sqlite F``).

``--db sqlite`` is the embedded default (a file in a temporary directory); ``--db postgres``
a fresh database ``bench_dbos`` on 127.0.0.1:5432. After ``DBOS.launch()`` and a one-workflow
warm-up, only the workload is timed, from the call to its result. Queues and handles poll the
database once a second by default; ``--poll S`` sets both intervals (the documented
``polling_interval_sec`` of the queue and of ``get_result``).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from _common import emit, postgres_database
from dbos import DBOS, DBOSConfig

QUEUE = "bench"
#: ``None``: the library's defaults (1 s for the queue and for ``get_result``).
POLL: dict[str, float] = {}


@DBOS.workflow()
def noop_workflow(i: int) -> None:
    return None


@DBOS.step()
def noop_step(i: int) -> None:
    return None


@DBOS.step()
def sleep_step() -> None:
    time.sleep(0.1)


@DBOS.workflow()
def sleeper_workflow(i: int) -> None:
    sleep_step()


def _wait_all(handles: list[Any]) -> None:
    for handle in handles:
        if POLL:
            handle.get_result(polling_interval_sec=POLL["seconds"])
        else:
            handle.get_result()


@DBOS.workflow()
def fanout_workflow(n: int) -> None:
    _wait_all([DBOS.enqueue_workflow(QUEUE, noop_workflow, i) for i in range(n)])


@DBOS.workflow()
def sleepers_workflow(n: int) -> None:
    _wait_all([DBOS.enqueue_workflow(QUEUE, sleeper_workflow, i) for i in range(n)])


@DBOS.workflow()
def chain_workflow(n: int) -> None:
    for i in range(n):
        noop_step(i)


def run_workload(name: str) -> None:
    if name.startswith("fanout_"):
        fanout_workflow(int(name.split("_")[1]))
    elif name == "chain_200":
        chain_workflow(200)
    elif name == "sleepers_ready":
        sleepers_workflow(50)
    elif name == "cli_10":
        fanout_workflow(9)
    else:
        raise SystemExit(f"unknown workload {name!r}")


@contextlib.contextmanager
def system_database(db: str, sqlite_file: str | None) -> Iterator[str]:
    if sqlite_file:
        yield f"sqlite:///{sqlite_file}"
    elif db == "postgres":
        with postgres_database("bench_dbos") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="dbos-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite"


def launch(url: str, poll: float | None) -> None:
    config: DBOSConfig = {
        "name": "apflow-peer-bench",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    if poll is None:
        DBOS.register_queue(QUEUE)
    else:
        POLL["seconds"] = poll
        DBOS.register_queue(QUEUE, polling_interval_sec=poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", required=True)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--poll", type=float, help="polling interval of queue and handles (s)")
    parser.add_argument("--sqlite", metavar="FILE", help="this SQLite file (kept) instead")
    parser.add_argument("--no-warm-up", action="store_true", help="time the first run too")
    args = parser.parse_args()
    with system_database(args.db, args.sqlite) as url:
        launch(url, args.poll)
        try:
            if not args.no_warm_up:
                fanout_workflow(1)  # warm-up: first statements, thread pool, queue thread
            start = time.perf_counter()
            run_workload(args.one)
            seconds = time.perf_counter() - start
        finally:
            DBOS.destroy()
    emit(args.one, seconds)


if __name__ == "__main__":
    main()
