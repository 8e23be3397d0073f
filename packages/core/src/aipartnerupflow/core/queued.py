"""Queued trees on PostgreSQL: submit from any process, wait or stream from any process,
cancel across workers. Workers (:mod:`aipartnerupflow.core.worker`) do the running."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from aipartnerupflow.core.errors import ConfigurationError, TaskNotFoundError
from aipartnerupflow.core.events import EventKind, TaskEvent
from aipartnerupflow.core.limits import DEFAULT_LIMITS, TaskLimits
from aipartnerupflow.core.pgqueue import (
    CANCEL_CHANNEL,
    EVENTS_CHANNEL,
    READY_CHANNEL,
    TERMINAL,
    connect,
    open_counts_sql,
    prepare_queued,
)
from aipartnerupflow.core.results import TreeResult
from aipartnerupflow.core.tree import TaskTreeNode
from aipartnerupflow.core.validation import tasks_from_array, validate_tasks

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

__all__ = ["cancel_queued", "stream_tree", "submit_tree", "wait_for_tree"]


def _pg_store(manager: TaskManager) -> SqlTaskStorage:
    from aipartnerupflow.core.storage.sql_store import SqlTaskStorage

    store = manager.storage
    if not isinstance(store, SqlTaskStorage) or store.dialect != "postgresql":
        raise ConfigurationError(
            "queued trees and workers need PostgreSQL: create the TaskManager with "
            "create_session('postgresql://user:password@host:5432/dbname'); on DuckDB use "
            "run_tasks() or distribute_task_tree(), which run in this process"
        )
    return store


async def submit_tree(
    manager: TaskManager,
    tasks: list[dict[str, Any]],
    *,
    user_id: str | None = None,
    limits: TaskLimits = DEFAULT_LIMITS,
) -> TaskTreeNode:
    """Validate, store and enqueue a tree for workers; returns at once (the hooks of
    ``on_tree_created`` run in :meth:`TaskManager.submit`, the way to call this)."""
    store = _pg_store(manager)
    models = tasks_from_array(tasks, user_id=user_id, limits=limits)
    validate_tasks(models, manager.registry, limits=limits)
    prepare_queued(models)
    await store.insert_tasks(models)
    await store.run_sql(lambda conn: conn.execute(sa.text(f"NOTIFY {READY_CHANNEL}")))
    return TaskTreeNode.from_tasks(models)


async def _open_count(conn: Any, table: str, root_id: str) -> int | None:
    cur = await conn.execute(open_counts_sql(table), {"roots": [root_id]})
    rows = await cur.fetchall()
    return int(rows[0]["open"]) if rows else None


async def _result(manager: TaskManager, root_id: str) -> TreeResult:
    return TreeResult.of(root_id, await manager.storage.get_tree(root_id))


async def stream_tree(
    manager: TaskManager, root_id: str, *, poll_seconds: float = 1.0
) -> AsyncIterator[TaskEvent]:
    """Events of a queued tree as workers report them, ending with ``tree_finished``."""
    store = _pg_store(manager)
    table = store.table.name
    conn = await connect(store.url)
    seq = 0
    try:
        await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        if await _open_count(conn, table, root_id) is None:
            raise TaskNotFoundError(f"no task tree with root {root_id!r}")
        finished = False
        while not finished:
            if await _open_count(conn, table, root_id) == 0:
                break
            async for note in conn.notifies(timeout=poll_seconds):
                data = json.loads(note.payload)
                if data.get("r") != root_id:
                    continue
                if data.get("k") == EventKind.TREE_FINISHED:
                    finished = True
                    break
                seq += 1
                yield TaskEvent(
                    kind=data["k"],
                    root_id=root_id,
                    task_id=data["t"],
                    name=data["n"],
                    status=data["s"],
                    seq=seq,
                    timestamp=time.time(),
                    error=data.get("e"),
                    progress=float(data.get("p", 0.0)),
                    message=data.get("m"),
                )
        result = await _result(manager, root_id)
        yield TaskEvent(
            kind=EventKind.TREE_FINISHED,
            root_id=root_id,
            task_id=root_id,
            name=result.root.name,
            status=result.status,
            seq=seq + 1,
            timestamp=time.time(),
        )
    finally:
        await conn.close()


async def wait_for_tree(
    manager: TaskManager,
    root_id: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109
) -> TreeResult:
    """Wait until every task of a queued tree has ended, then return its result."""

    async def drain() -> None:
        async for _ in stream_tree(manager, root_id):
            pass

    await asyncio.wait_for(drain(), timeout)
    return await _result(manager, root_id)


async def cancel_queued(manager: TaskManager, ids: set[str]) -> list[str]:
    """Cancel queued tasks: pending ones end now, running ones are told through NOTIFY."""
    store = _pg_store(manager)
    t = store.table
    terminal = list(TERMINAL)

    def cancel(conn: sa.Connection) -> list[str]:
        with conn.begin():
            now = datetime.now(UTC)
            ended = conn.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), t.c.status == "pending")
                .values(status="cancelled", error="cancelled", completed_at=now, updated_at=now)
                .returning(t.c.id, t.c.dependents)
            ).all()
            running = conn.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), t.c.status == "in_progress")
                .values(cancel_requested=True)
                .returning(t.c.id)
            ).all()
            released = [d for row in ended for d in (row[1] or [])]
            if released:
                counts: dict[str, int] = {}
                for d in released:
                    counts[d] = counts.get(d, 0) + 1
                for dep_id, n in sorted(counts.items()):
                    conn.execute(
                        sa.update(t)
                        .where(t.c.id == dep_id, t.c.status.not_in(terminal))
                        .values(open_deps=t.c.open_deps - n)
                    )
            for row in running:
                conn.execute(
                    sa.text("SELECT pg_notify(:c, :p)"), {"c": CANCEL_CHANNEL, "p": row[0]}
                )
            conn.execute(sa.text(f"NOTIFY {READY_CHANNEL}"))
            return sorted([row[0] for row in ended] + [row[0] for row in running])

    return await store.run_sql(cancel)
