"""The storage floor: the least time a database needs to durably write a workload's rows.

    python benchmarks/peers/storage_floor.py [--rounds 5] [--rows 1001 10001 200 51]

For N task rows (the workload's tree), three commits and nothing else: one batched insert of
every row, one batched update marking every row started (status, attempt, lease, timestamps)
and one marking it completed (status, result, progress, timestamps); each statement its own
transaction, committed durably (DuckDB's WAL is synced on commit; PostgreSQL runs with its
default ``synchronous_commit = on``). The table is the engine's own, created by its
migrations, so indexes and column types are the same. No engine, no Python per row beyond
building the parameter lists, which happens before the clock starts.

DuckDB gets a columnar insert (one list parameter per column, ``unnest``), PostgreSQL
``COPY``; both get ``UPDATE … SET <constants> WHERE id IN <the ids>`` for the updates.
The rows are deleted (untimed) between rounds; the minimum over the rounds is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import postgres_database

from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.core.storage.schema import COLUMN_KINDS

TABLE = "apflow_tasks"
JSON_COLUMNS = {name for name in TASK_COLUMNS if COLUMN_KINDS[name] == "json"}
DUCKDB_TYPES = {
    "text": "VARCHAR",
    "int": "INTEGER",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
    "json": "VARCHAR",
}


def tree(n: int) -> list[TaskModel]:
    """A root and n-1 no-op children, with the values the engine stores for them."""
    now = datetime.now(UTC)
    root = TaskModel(name="root", has_children=True, created_at=now, updated_at=now)
    root.root_id = root.id
    children = [
        TaskModel(
            name=f"t{i}",
            parent_id=root.id,
            root_id=root.id,
            position=i,
            schemas={"method": "bench_noop"},
            created_at=now,
            updated_at=now,
        )
        for i in range(n - 1)
    ]
    return [root, *children]


def _cell(name: str, value: Any) -> Any:
    return json.dumps(value) if name in JSON_COLUMNS and value is not None else value


def columns(rows: list[TaskModel], names: tuple[str, ...]) -> list[list[Any]]:
    return [[_cell(n, getattr(r, n)) for r in rows] for n in names]


def changes() -> tuple[dict[str, Any], dict[str, Any]]:
    """The two updates' values: every row of a batch gets the same ones."""
    now = datetime.now(UTC)
    started = {
        "status": "in_progress",
        "attempts": 1,
        "lease_owner": "bench",
        "lease_expires_at": now + timedelta(seconds=60),
        "started_at": now,
        "updated_at": now,
    }
    completed = {
        "status": "completed",
        "result": json.dumps({}),
        "progress": 1.0,
        "lease_owner": None,
        "completed_at": now,
        "updated_at": now,
    }
    return started, completed


def _update(values: dict[str, Any], ids: list[str], dialect: str) -> tuple[str, list[Any]]:
    """One UPDATE of every row in ``ids`` to ``values`` (the cheapest form measured: constant
    values and an id list, rather than one list parameter per column)."""
    mark = "?" if dialect == "duckdb" else "%s"
    sets = ", ".join(f"{name} = {mark}" for name in values)
    where = "id IN (SELECT unnest(CAST(? AS VARCHAR[])))" if dialect == "duckdb" else "id = ANY(%s)"
    return f"UPDATE {TABLE} SET {sets} WHERE {where}", [*values.values(), ids]


async def _migrate(url: str) -> None:
    store = create_session(url)
    await store.initialize()
    await store.close()


def duckdb_floor(n: int, rounds: int) -> list[float]:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        path = f"{tmp}/floor.duckdb"
        asyncio.run(_migrate(f"duckdb:///{path}"))
        conn = duckdb.connect(path)
        insert = f"INSERT INTO {TABLE} ({', '.join(TASK_COLUMNS)}) SELECT " + ", ".join(
            f"unnest(CAST(? AS {DUCKDB_TYPES[COLUMN_KINDS[c]]}[]))" for c in TASK_COLUMNS
        )

        def one_round() -> float:
            rows = tree(n)
            ids = [r.id for r in rows]
            started, completed = changes()
            statements = [
                (insert, columns(rows, TASK_COLUMNS)),
                _update(started, ids, "duckdb"),
                _update(completed, ids, "duckdb"),
            ]
            begin = time.perf_counter()
            for sql, params in statements:
                conn.execute("BEGIN")
                conn.execute(sql, params)
                conn.execute("COMMIT")
            seconds = time.perf_counter() - begin
            conn.execute(f"DELETE FROM {TABLE}")
            conn.execute("CHECKPOINT")
            return seconds

        try:
            return _rounds(one_round, rounds)
        finally:
            conn.close()


def postgres_floor(n: int, rounds: int) -> list[float]:
    import psycopg

    with postgres_database("bench_floor") as url:
        asyncio.run(_migrate(url))
        with psycopg.connect(url) as conn:

            def one_round() -> float:
                rows = tree(n)
                records = [tuple(_cell(c, getattr(r, c)) for c in TASK_COLUMNS) for r in rows]
                ids = [r.id for r in rows]
                started, completed = changes()
                updates = [_update(started, ids, "pg"), _update(completed, ids, "pg")]
                begin = time.perf_counter()
                with conn.cursor() as cur:
                    copy_sql = f"COPY {TABLE} ({', '.join(TASK_COLUMNS)}) FROM STDIN"
                    with cur.copy(copy_sql) as copy:
                        for record in records:
                            copy.write_row(record)
                    conn.commit()
                    for sql, params in updates:
                        cur.execute(sql, params)
                        conn.commit()
                seconds = time.perf_counter() - begin
                conn.execute(f"DELETE FROM {TABLE}")
                conn.commit()
                return seconds

            return _rounds(one_round, rounds)


def _rounds(one_round: Callable[[], float], rounds: int) -> list[float]:
    one_round()  # warm-up: first statements, page cache
    return [one_round() for _ in range(rounds)]


def floors(rows: list[int], rounds: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for backend, fn in (("duckdb", duckdb_floor), ("postgres", postgres_floor)):
        for n in rows:
            samples = fn(n, rounds)
            out[f"{backend}/{n}"] = {
                "rows": n,
                "min_s": min(samples),
                "median_s": statistics.median(samples),
                "max_s": max(samples),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, nargs="*", default=[1001, 10001, 200, 51])
    args = parser.parse_args()
    print(json.dumps(floors(args.rows, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
