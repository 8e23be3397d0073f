"""What the peer benchmarks share: the workloads, the result line, a scratch PostgreSQL database.

Every workload runs in a fresh process that prints one JSON line (``emit``); ``run.py`` starts
those processes, interleaved, and reads the last line of each.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "BENCHMARKS",
    "POSTGRES_ADMIN_URL",
    "TASKS",
    "WORKLOADS",
    "emit",
    "peak_rss_mb",
    "postgres_database",
]

#: ``benchmarks/``: our own benchmark modules (run.py, workers.py, cli_startup.py…) live there.
BENCHMARKS = Path(__file__).resolve().parent.parent
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

#: The workloads every side runs, by the name ``benchmarks/run.py`` gives them. The peers
#: build the same shapes: a parent and N no-op children, a chain, 50 children sleeping 100 ms.
WORKLOADS = ["fanout_1000", "fanout_10000", "chain_200", "sleepers_ready"]
#: Tasks per workload, counted as ``benchmarks/run.py`` counts them (the parent included).
TASKS = {"fanout_1000": 1001, "fanout_10000": 10001, "chain_200": 200, "sleepers_ready": 51}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(name: str, seconds: float, **extra: Any) -> None:
    """Print the one JSON line ``run.py`` reads: the same keys as ``benchmarks/run.py``."""
    tasks = TASKS.get(name, 0)
    result = {
        "seconds": seconds,
        "tasks": tasks,
        "tasks_per_s": tasks / seconds if seconds else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        **extra,
    }
    print(json.dumps(result), flush=True)


@contextlib.contextmanager
def postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A fresh, empty database ``name`` (dropped first if a killed run left it), then dropped."""
    import psycopg

    if not name.isidentifier():
        raise ValueError(f"database name {name!r} must be a plain identifier")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
