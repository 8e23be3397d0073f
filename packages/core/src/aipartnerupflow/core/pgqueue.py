"""The PostgreSQL work queue: the SQL shared by submitters, waiters and workers.

A queued task is claimable when ``status = 'pending'``, ``dispatch = 'queue'``, ``open_deps = 0``
(every dependency has ended) and its ``run_after`` has passed. Claims use ``FOR UPDATE SKIP
LOCKED``; each claim increments ``attempts``, which is the fencing number a completion must
present, together with the lease owner. Ends and releases are announced with NOTIFY.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError, StorageError
from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel
from aipartnerupflow.core.status import TaskStatus

__all__ = [
    "CANCEL_CHANNEL",
    "EVENTS_CHANNEL",
    "READY_CHANNEL",
    "connect",
    "event_payload",
    "prepare_queued",
    "psycopg_url",
    "reclaim_sql",
    "row_to_task",
]

READY_CHANNEL = "apflow_ready"
CANCEL_CHANNEL = "apflow_cancel"
EVENTS_CHANNEL = "apflow_events"
TERMINAL = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)


def psycopg_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one; a clear error for anything but PostgreSQL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    raise ConfigurationError(
        "workers and queued trees need PostgreSQL: set AIPARTNERUPFLOW_DATABASE_URL to "
        "postgresql://user:password@host:5432/dbname (DuckDB runs trees in one process only)"
    )


async def connect(url: str, *, autocommit: bool = True, application_name: str = "apflow") -> Any:
    """An async psycopg connection returning dict rows; one clear error line on failure."""
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise ConfigurationError(
            'PostgreSQL needs the psycopg driver: pip install "aipartnerupflow[postgres]"'
        ) from None
    from aipartnerupflow.core.storage import connect_error, redact_url

    try:
        return await psycopg.AsyncConnection.connect(
            psycopg_url(url),
            autocommit=autocommit,
            row_factory=dict_row,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        raise StorageError(f"cannot connect to {redact_url(url)}: {connect_error(exc)}") from None


def row_to_task(row: dict[str, Any]) -> TaskModel:
    """A TaskModel from a full row."""
    return TaskModel(**{k: row[k] for k in TASK_COLUMNS if k in row})


def prepare_queued(tasks: Sequence[TaskModel]) -> None:
    """Mark tasks for workers: ``dispatch``, ``dependents`` and ``open_deps``."""
    dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
    for t in tasks:
        for dep in t.dependency_ids():
            dependents[dep].append(t.id)
    for t in tasks:
        t.dispatch = "queue"
        t.dependents = dependents[t.id]
        t.open_deps = sum(
            1 for d in t.dependency_ids() if not TaskStatus.is_terminal(_status_of(tasks, d))
        )


def _status_of(tasks: Sequence[TaskModel], task_id: str) -> str:
    for t in tasks:
        if t.id == task_id:
            return t.status
    return TaskStatus.PENDING.value


def event_payload(
    kind: str,
    root_id: str,
    task_id: str,
    name: str,
    status: str,
    error: str | None = None,
    *,
    progress: float | None = None,
    message: str | None = None,
) -> str:
    """A NOTIFY payload (kept well under PostgreSQL's 8000-byte limit)."""
    data: dict[str, Any] = {"k": kind, "r": root_id, "t": task_id, "n": name[:200], "s": status}
    if error:
        data["e"] = error[:500]
    if progress is not None:
        data["p"] = progress
    if message:
        data["m"] = message[:500]
    return json.dumps(data)


def reclaim_sql(table: str) -> str:
    """Expired leases of queued tasks: each counts as an attempt (it was claimed and its worker
    was lost); back to pending while attempts remain, failed once ``max_attempts`` is used up."""
    limit = (
        "CASE WHEN json_typeof(t.retry -> 'max_attempts') = 'number' THEN "
        "greatest(1, least((t.retry ->> 'max_attempts')::numeric, 1000000))::integer ELSE 1 END"
    )
    return f"""
        WITH expired AS (
            SELECT t.id, t.attempts, {limit} AS lim FROM {table} AS t
             WHERE t.dispatch = 'queue' AND t.status = 'in_progress'
               AND t.lease_expires_at < now()
             FOR UPDATE SKIP LOCKED)
        UPDATE {table} AS t
           SET status = CASE WHEN e.attempts >= e.lim THEN 'failed' ELSE 'pending' END,
               error = CASE WHEN e.attempts >= e.lim THEN
                   format('worker lost %%s time(s) (max_attempts %%s): the worker running the '
                          'task stopped renewing its lease (it died, or was cut off from the '
                          'database)', e.attempts, e.lim)
                   ELSE t.error END,
               completed_at = CASE WHEN e.attempts >= e.lim THEN now() ELSE NULL END,
               lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
          FROM expired AS e WHERE t.id = e.id
        RETURNING t.id, t.root_id, t.name, t.status, t.error, t.dependents"""


def claim_sql(table: str) -> str:
    """Claim up to %(n)s claimable tasks for %(owner)s with a lease of %(lease)s seconds."""
    return f"""
        WITH picked AS (
            SELECT id FROM {table}
            WHERE status = 'pending' AND dispatch = 'queue' AND open_deps = 0
              AND (run_after IS NULL OR run_after <= now())
            ORDER BY priority, created_at, position
            LIMIT %(n)s
            FOR UPDATE SKIP LOCKED)
        UPDATE {table} AS t
           SET status = 'in_progress', attempts = t.attempts + 1, lease_owner = %(owner)s,
               lease_expires_at = now() + make_interval(secs => %(lease)s),
               started_at = now(), updated_at = now(), error = NULL
          FROM picked WHERE t.id = picked.id
        RETURNING t.*"""


def finish_sql(table: str) -> str:
    """Fenced completion of many attempts: only rows whose lease and attempt still match."""
    return f"""
        UPDATE {table} AS t
           SET status = u.status, result = CASE WHEN u.status = 'completed'
                                                THEN u.result::json ELSE t.result END,
               error = u.error, progress = CASE WHEN u.status = 'completed' THEN 1.0
                                                ELSE t.progress END,
               completed_at = CASE WHEN u.status = 'pending' THEN NULL ELSE now() END,
               run_after = u.run_after, lease_owner = NULL, lease_expires_at = NULL,
               updated_at = now(),
               attempts = CASE WHEN u.requeue THEN t.attempts - 1 ELSE t.attempts END
          FROM unnest(%(ids)s::text[], %(fences)s::integer[], %(statuses)s::text[],
                      %(results)s::text[], %(errors)s::text[], %(run_after)s::timestamptz[],
                      %(requeue)s::boolean[])
               AS u(id, fence, status, result, error, run_after, requeue)
         WHERE t.id = u.id AND t.attempts = u.fence AND t.lease_owner = %(owner)s
           AND t.status = 'in_progress'
        RETURNING t.id, t.root_id, t.name, t.status, t.error, t.dependents"""


def release_dependents_sql(table: str) -> str:
    """One dependency of each listed task (with repeats) has ended.

    Rows are locked in id order first, so concurrent workers never deadlock on them.
    """
    return f"""
        WITH d AS (SELECT id, count(*) AS n FROM unnest(%(ids)s::text[]) AS id GROUP BY id),
             locked AS (SELECT t.id FROM {table} AS t JOIN d ON d.id = t.id
                        ORDER BY t.id FOR UPDATE OF t)
        UPDATE {table} AS t SET open_deps = t.open_deps - d.n
          FROM d JOIN locked ON locked.id = d.id
         WHERE t.id = d.id
        RETURNING t.id, t.open_deps"""


def open_counts_sql(table: str) -> str:
    """Unfinished (and running) tasks per root, for the given roots."""
    terminal = ", ".join(f"'{s}'" for s in TERMINAL)
    return f"""
        SELECT coalesce(root_id, id) AS root, count(*) FILTER (WHERE status NOT IN ({terminal}))
               AS open, count(*) FILTER (WHERE status = 'in_progress') AS running
          FROM {table} WHERE root_id = ANY(%(roots)s) OR id = ANY(%(roots)s)
         GROUP BY coalesce(root_id, id)"""
