"""PostgreSQL workers: any number of processes, on any machines, sharing queued trees.

A worker claims ready tasks with ``FOR UPDATE SKIP LOCKED`` in short transactions, holds a lease
on each (renewed by heartbeat), runs them with the same rules as the in-process engine
(:func:`aipartnerupflow.core.invoke.invoke`), and writes their ends in group-committed, fenced
batches: a write from a worker that lost its lease is rejected. It wakes on LISTEN/NOTIFY and
polls slowly as a fallback; expired leases of dead workers are reclaimed by any live worker.

    run_worker("postgresql://user@host/db", concurrency=16)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import threading
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aipartnerupflow.core.context import _set_current
from aipartnerupflow.core.errors import ConfigurationError, StaleLeaseError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.resources import aclose_loop_resources
from aipartnerupflow.core.hooks import get_post_hooks, run_hook
from aipartnerupflow.core.invoke import (
    FinalFailure,
    RetryableFailure,
    attempt_limit,
    backoff_delay,
    invoke,
)
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.pgqueue import (
    CANCEL_CHANNEL,
    EVENTS_CHANNEL,
    READY_CHANNEL,
    claim_sql,
    connect,
    event_payload,
    finish_sql,
    open_counts_sql,
    psycopg_url,
    reclaim_sql,
    release_dependents_sql,
    row_to_task,
)
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storable import storable_text
from aipartnerupflow.core.storage.schema import task_table_name
from aipartnerupflow.core.validation import resolve_method

__all__ = ["Worker", "WorkerStats", "parse_limits", "run_worker"]

log = logging.getLogger("aipartnerupflow.worker")
#: Seed of the advisory-lock key that serialises the last end batches of one tree.
_TAIL_SEED = 0x61706674
R = TypeVar("R")


@dataclass(slots=True)
class WorkerStats:
    """What a worker did (for tests and benchmarks)."""

    claimed: int = 0
    finished: int = 0
    stale_writes: int = 0
    reclaimed: int = 0


@dataclass(slots=True, eq=False)
class _Job:
    task: TaskModel
    fence: int
    job: asyncio.Task[None] | None = None
    executor: ExecutableTask | None = None
    cancel_requested: bool = False
    releasing: bool = False
    inputs: dict[str, Any] | None = None


@dataclass(slots=True)
class _End:
    task: TaskModel
    fence: int
    status: str
    result: Any = None
    error: str | None = None
    run_after: datetime | None = None
    requeue: bool = False  # back in line without counting an attempt


class Worker:
    """Claims and runs queued tasks from a PostgreSQL task store."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 16,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        executor_limits: dict[str, int] | None = None,
        global_executor_limits: dict[str, int] | None = None,
        registry: ExecutorRegistry | None = None,
        worker_id: str | None = None,
        shutdown_grace_seconds: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.url = url
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.registry = registry or get_executor_registry()
        self.worker_id = worker_id or (
            f"worker:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        )
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.table = task_table_name()
        self.stats = WorkerStats()
        self._limits = {k: asyncio.Semaphore(v) for k, v in (executor_limits or {}).items()}
        self.global_limits = dict(global_executor_limits or {})
        self._locks: Any = None
        self._locks_guard = asyncio.Lock()
        self._held: set[tuple[int, int]] = set()
        self._jobs: dict[str, _Job] = {}
        self._ends: asyncio.Queue[_End] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._work: Any = None
        self._listen_conn: Any = None
        self._reconnecting = asyncio.Lock()
        self.application_name = f"apflow-worker {self.worker_id}"[:63]
        self._keeper_stop = threading.Event()
        self._conn_lock = asyncio.Lock()
        self._saving: set[asyncio.Future[None]] = set()
        self._progress: dict[str, tuple[TaskModel, float, str | None]] = {}

    # -- main loop -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop: no new claims; running tasks finish or are released."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and run tasks until :meth:`stop` is called."""
        from aipartnerupflow.core.pgqueue import psycopg_url
        from aipartnerupflow.core.storage import create_session

        psycopg_url(self.url)  # a clear error for anything but PostgreSQL
        self._work = await connect(self.url, application_name=self.application_name)
        store = create_session(self.url)  # applies pending migrations on a fresh database
        try:
            await store.initialize()
        finally:
            await store.close()
        self._listen_conn = await connect(self.url, application_name=self.application_name)
        keeper = threading.Thread(
            target=self._keep_leases, name=f"lease-keeper {self.worker_id}", daemon=True
        )
        keeper.start()
        try:
            helpers = [
                asyncio.create_task(self._listen()),
                asyncio.create_task(self._write_ends()),
                asyncio.create_task(self._heartbeat()),
                asyncio.create_task(self._send_progress()),
            ]
            try:
                await self._claim_loop()
                await self._drain()
            finally:
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                await self._flush_ends()
        finally:
            self._keeper_stop.set()
            await asyncio.to_thread(keeper.join)
            await self._listen_conn.close()
            await self._work.close()
            if self._locks is not None:
                await self._locks.close()
            await aclose_loop_resources()

    async def _claim_loop(self) -> None:
        batch = max(1, self.concurrency // 4)
        while not self._stop.is_set():
            self._wake.clear()
            free = self.concurrency - len(self._jobs)
            if 0 < free < batch and self._jobs:  # claim in batches, not one slot at a time
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.002)
                self._wake.clear()
                free = self.concurrency - len(self._jobs)
            got = await self._claim(free) if free > 0 else 0
            if got and got == free:
                continue
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _claim(self, n: int) -> int:
        params = {"n": n, "owner": self.worker_id, "lease": self.lease_seconds}
        rows = await self._db(lambda conn: _fetch(conn, claim_sql(self.table), params))
        if not rows:
            return 0
        tasks = [row_to_task(r) for r in rows]
        self.stats.claimed += len(tasks)
        dep_ids = sorted({d for t in tasks for d in t.dependency_ids()})
        deps: dict[str, TaskModel] = {}
        if dep_ids:
            sql = f"SELECT * FROM {self.table} WHERE id = ANY(%(ids)s)"
            found = await self._db(lambda conn: _fetch(conn, sql, {"ids": dep_ids}))
            deps = {r["id"]: row_to_task(r) for r in found}
        for task in tasks:
            job = _Job(task, task.attempts)
            self._jobs[task.id] = job
            job.job = asyncio.create_task(self._execute(job, deps))
        payloads = [
            event_payload("task_status", t.root_id or t.id, t.id, t.name, TaskStatus.IN_PROGRESS)
            for t in tasks
        ]
        await self._db(lambda conn: self._notify_events(payloads, conn))
        return len(tasks)

    async def _execute(self, job: _Job, deps: dict[str, TaskModel]) -> None:
        task = job.task
        end = _End(task, job.fence, TaskStatus.FAILED.value)
        try:
            blocked = self._blocked(task, deps)
            if job.cancel_requested or task.cancel_requested:
                end.status, end.error = TaskStatus.CANCELLED.value, "cancelled"
            elif blocked is not None:
                end.status, end.error = blocked
            else:
                await self._attempt(job, deps, end)
        except asyncio.CancelledError:
            if job.releasing:
                end.status, end.error, end.requeue = TaskStatus.PENDING.value, None, True
            else:
                end.status, end.error = TaskStatus.CANCELLED.value, "cancelled"
        except FinalFailure as exc:  # e.g. a retry setting that is no count
            end.status, end.result, end.error = TaskStatus.FAILED.value, None, str(exc)
        except Exception as exc:
            log.exception("task %s: unexpected error in the worker", task.id)
            end.status, end.result = TaskStatus.FAILED.value, None
            end.error = f"the worker failed while running the task: {type(exc).__name__}: {exc}"
        finally:
            _set_current(None)
            if job.cancel_requested and end.status != TaskStatus.PENDING:
                end.status, end.result, end.error = TaskStatus.CANCELLED.value, None, "cancelled"
            self._jobs.pop(task.id, None)
            self._wake.set()
            self._ends.put_nowait(end)

    @staticmethod
    def _blocked(task: TaskModel, deps: dict[str, TaskModel]) -> tuple[str, str] | None:
        for dep in task.dependencies:
            row = deps.get(dep["id"])
            if row is None or not dep.get("required", True) or row.status == "completed":
                continue
            if row.status == TaskStatus.CANCELLED:
                return (
                    TaskStatus.CANCELLED.value,
                    f"dependency {row.name!r} ({row.id}) was cancelled",
                )
            detail = f": {row.error[:200]}" if row.error else ""
            return (TaskStatus.FAILED.value, f"dependency {row.name!r} ({row.id}) failed{detail}")
        return None

    async def _attempt(self, job: _Job, deps: dict[str, TaskModel], end: _End) -> None:
        task = job.task
        method = resolve_method(task, self.registry)
        if method is None:
            end.status = TaskStatus.COMPLETED.value
            return
        dep_results = {
            d: deps[d].result
            for d in task.dependency_ids()
            if d in deps and deps[d].status == TaskStatus.COMPLETED
        }
        limit = self._limits.get(method)
        slot = await self._take_slot(method)
        if slot is False:  # the executor's limit across all workers is reached: back in line
            end.status, end.requeue = TaskStatus.PENDING.value, True
            end.run_after = datetime.now(UTC) + timedelta(seconds=random.uniform(0.05, 0.25))
            return
        try:
            async with limit if limit is not None else contextlib.nullcontext():
                end.result = await invoke(
                    self.registry,
                    task,
                    method,
                    task.root_id or task.id,
                    dep_results,
                    on_executor=lambda executor: setattr(job, "executor", executor),
                    on_inputs=lambda inputs: setattr(job, "inputs", inputs),
                    on_progress=lambda p, m: self._on_progress(task, p, m),
                    cancel_requested=lambda: job.cancel_requested,
                    save_inputs=lambda inputs: self._save_inputs(task.id, inputs),
                )
            end.status = TaskStatus.COMPLETED.value
        except RetryableFailure as exc:
            end.error = str(exc)
            retry = task.retry or {}
            if task.attempts < attempt_limit(task.retry) and not job.cancel_requested:
                end.status = TaskStatus.PENDING.value
                end.run_after = datetime.now(UTC) + timedelta(
                    seconds=backoff_delay(retry, task.attempts, exc.retry_after)
                )
            elif task.attempts > 1:
                end.error = f"{end.error} (after {task.attempts} attempts)"
        except FinalFailure as exc:
            end.error = str(exc)
        finally:
            if isinstance(slot, tuple):
                await self._give_slot(slot)
        task.status, task.error = end.status, end.error
        for hook in get_post_hooks():
            await run_hook(
                hook, task, job.inputs if job.inputs is not None else task.inputs, end.result
            )

    def _on_progress(self, task: TaskModel, progress: float, message: str | None) -> None:
        self._progress[task.id] = (task, progress, message)

    def _save_inputs(self, task_id: str, inputs: dict[str, Any]) -> None:
        sql = f"UPDATE {self.table} SET inputs = %(inputs)s::json WHERE id = %(id)s"
        text = json.dumps(inputs, default=str)

        async def save() -> None:
            try:
                await self._db(lambda conn: conn.execute(sql, {"inputs": text, "id": task_id}))
            except Exception:
                log.exception("could not save the inputs a pre-hook set on task %s", task_id)

        self._saving.add(saving := asyncio.ensure_future(save()))
        saving.add_done_callback(self._saving.discard)

    async def _send_progress(self) -> None:
        """Progress reports of running tasks: stored and announced a few times a second."""
        sql = (
            f"UPDATE {self.table} AS t SET progress = u.p FROM unnest(%(ids)s::text[], "
            "%(ps)s::double precision[]) AS u(id, p) WHERE t.id = u.id AND "
            "t.status = 'in_progress' AND t.lease_owner = %(owner)s"
        )
        while True:
            await asyncio.sleep(0.2)
            if not self._progress:
                continue
            reports, self._progress = list(self._progress.values()), {}
            params = {
                "ids": [t.id for t, _, _ in reports],
                "ps": [p for _, p, _ in reports],
                "owner": self.worker_id,
            }
            payloads = [
                event_payload(
                    "task_progress",
                    t.root_id or t.id,
                    t.id,
                    t.name,
                    TaskStatus.IN_PROGRESS.value,
                    progress=p,
                    message=m,
                )
                for t, p, m in reports
            ]

            async def send(conn: Any, params: Any = params, payloads: Any = payloads) -> None:
                await conn.execute(sql, params)
                await self._notify_events(payloads, conn)

            try:
                await self._db(send)
            except Exception:
                log.exception("could not report progress")

    async def _take_slot(self, method: str) -> tuple[int, int] | bool:
        """One of the executor's slots across all workers (an advisory lock), False when all
        are taken, True when the executor has no such limit."""
        limit = self.global_limits.get(method)
        if not limit:
            return True
        key = zlib.crc32(method.encode()) & 0x7FFFFFFF
        async with self._locks_guard:
            if self._locks is None or self._locks.closed:
                self._locks = await connect(self.url, application_name=self.application_name)
            for slot in range(limit):
                if (key, slot) in self._held:  # advisory locks are re-entrant per session
                    continue
                cur = await self._locks.execute(
                    "SELECT pg_try_advisory_lock(%s, %s) AS ok", (key, slot)
                )
                row = await cur.fetchone()
                if row and row["ok"]:
                    self._held.add((key, slot))
                    return (key, slot)
        return False

    async def _give_slot(self, slot: tuple[int, int]) -> None:
        async with self._locks_guard:
            self._held.discard(slot)
            if self._locks is not None and not self._locks.closed:
                with contextlib.suppress(Exception):
                    await self._locks.execute("SELECT pg_advisory_unlock(%s, %s)", slot)

    # -- writing ends (group commit, fenced) ---------------------------------------------

    async def _write_ends(self) -> None:
        while True:
            batch = [await self._ends.get()]
            while not self._ends.empty():
                batch.append(self._ends.get_nowait())
            await self._commit(batch)

    async def _flush_ends(self) -> None:
        batch = []
        while not self._ends.empty():
            batch.append(self._ends.get_nowait())
        if batch:
            await self._commit(batch)

    async def _commit(self, batch: Sequence[_End]) -> None:
        for end in batch:
            end.error = storable_text(end.error)
        written = await self._commit_batch(batch)
        if written is None and len(batch) > 1:  # one bad row must not cost the others
            log.warning("a batch of %d task ends failed; writing them one by one", len(batch))
            written = []
            for end in batch:
                one = await self._commit_batch([end])
                if one is None:
                    end.status, end.result = TaskStatus.FAILED.value, None
                    end.error = "the task's end could not be stored (see the worker's log)"
                    end.run_after, end.requeue = None, False
                    one = await self._commit_batch([end]) or []
                written += one
        if written is None:
            return
        accepted = {r["id"] for r in written}
        for end in batch:
            if end.task.id not in accepted:
                self.stats.stale_writes += 1
                log.warning(
                    "%s",
                    StaleLeaseError(
                        f"late write for task {end.task.id} (attempt {end.fence}) rejected: this "
                        "worker's lease on it was lost and another attempt owns it"
                    ),
                )
        self.stats.finished += len(accepted)

    async def _commit_batch(self, batch: Sequence[_End]) -> list[dict[str, Any]] | None:
        """Write these ends in one transaction; None when they could not be written."""
        try:
            results = [
                None if e.status != "completed" else json.dumps(e.result, allow_nan=False)
                for e in batch
            ]
        except (TypeError, ValueError, RecursionError):
            return None
        params = {
            "owner": self.worker_id,
            "ids": [e.task.id for e in batch],
            "fences": [e.fence for e in batch],
            "statuses": [e.status for e in batch],
            "results": results,
            "errors": [e.error for e in batch],
            "run_after": [e.run_after for e in batch],
            "requeue": [e.requeue for e in batch],
        }
        for attempt in range(1, 9):
            try:
                return await self._db(lambda conn: self._commit_once(params, conn))
            except Exception as exc:
                if attempt == 8 or not _transient(exc):
                    log.error(
                        "could not record %d task end(s): %s%s",
                        len(batch),
                        exc,
                        ""
                        if len(batch) > 1
                        else "; its lease will expire and it runs again while attempts remain",
                    )
                    return None
                await asyncio.sleep(0.01 * attempt)
        return None  # pragma: no cover - the loop returns

    async def _commit_once(self, params: dict[str, Any], conn: Any) -> list[dict[str, Any]]:
        async with conn.transaction():
            written = await _fetch(conn, finish_sql(self.table), params)
            await self._after_ends(written, conn)
        return written

    async def _after_ends(self, written: Sequence[dict[str, Any]], conn: Any) -> None:
        """Release the dependents of ended tasks and announce the ends (same transaction)."""
        if written:
            released = [
                d
                for r in written
                if r["status"] in ("completed", "failed", "cancelled")
                for d in (r["dependents"] or [])
            ]
            ready = False
            if released:
                rows = await _fetch(conn, release_dependents_sql(self.table), {"ids": released})
                ready = any(r["open_deps"] <= 0 for r in rows)
            if ready or any(r["status"] == "pending" for r in written):
                await conn.execute(f"NOTIFY {READY_CHANNEL}")
            payloads = [
                event_payload(
                    "task_status",
                    r["root_id"] or r["id"],
                    r["id"],
                    r["name"],
                    r["status"],
                    r["error"],
                )
                for r in written
            ]
            payloads += await self._finished_trees(written, conn)
            await self._notify_events(payloads, conn)

    async def _finished_trees(self, written: Sequence[dict[str, Any]], conn: Any) -> list[str]:
        roots = sorted(
            {
                r["root_id"] or r["id"]
                for r in written
                if r["status"] in ("completed", "failed", "cancelled")
            }
        )
        if not roots:
            return []
        rows = await _fetch(conn, open_counts_sql(self.table), {"roots": roots})
        # Ends other workers are committing are invisible here: once a tree has only running
        # tasks left, the last two end batches could each count the other's tasks as open,
        # and neither would announce the end. So the tail of a tree counts one batch at a
        # time: after the lock, this statement sees what the batch before committed.
        tail = sorted(r["root"] for r in rows if 0 < r["open"] == r["running"])
        if tail:
            for root in tail:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", (root, _TAIL_SEED)
                )
            rows = await _fetch(conn, open_counts_sql(self.table), {"roots": roots})
        return [
            event_payload("tree_finished", r["root"], r["root"], "", "")
            for r in rows
            if r["open"] == 0
        ]

    async def _notify_events(self, payloads: Sequence[str], conn: Any) -> None:
        if payloads:
            await conn.execute(
                "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) WITH ORDINALITY AS u(p, i) "
                "ORDER BY i",
                (EVENTS_CHANNEL, list(payloads)),
            )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self.lease_seconds / 3))
            try:
                for task_id in await self._db(self._renew_and_reclaim):
                    await self._cancel_local(task_id)
            except Exception:
                log.exception("heartbeat failed")

    async def _renew_and_reclaim(self, conn: Any) -> list[str]:
        """Renew this worker's leases and reclaim expired ones; returns the ids of running
        tasks whose cancellation was requested."""
        cancel: list[str] = []
        ids = list(self._jobs)
        if ids:
            rows = await _fetch(
                conn,
                f"UPDATE {self.table} SET lease_expires_at = now() + "
                "make_interval(secs => %(lease)s) WHERE lease_owner = %(owner)s AND "
                "status = 'in_progress' AND id = ANY(%(ids)s) RETURNING id, cancel_requested",
                {"lease": self.lease_seconds, "owner": self.worker_id, "ids": ids},
            )
            cancel = [row["id"] for row in rows if row["cancel_requested"]]
        async with conn.transaction():
            reclaimed = await _fetch(conn, reclaim_sql(self.table), {})
            if reclaimed:
                await self._after_ends(reclaimed, conn)
                await conn.execute(f"NOTIFY {READY_CHANNEL}")
        if reclaimed:
            self.stats.reclaimed += len(reclaimed)
            lost = sum(1 for r in reclaimed if r["status"] == TaskStatus.FAILED)
            log.warning(
                "reclaimed %d task(s) whose worker's lease expired (%d failed: max_attempts "
                "used up)",
                len(reclaimed),
                lost,
            )
        return cancel

    def _keep_leases(self) -> None:
        """Renew the leases of running tasks from a thread, so a task that blocks the event
        loop is not taken for lost and run a second time elsewhere meanwhile."""
        import psycopg

        sql = (
            f"UPDATE {self.table} SET lease_expires_at = now() + make_interval(secs => %s) "
            "WHERE lease_owner = %s AND status = 'in_progress' AND id = ANY(%s)"
        )
        conn: Any = None
        every = max(0.05, self.lease_seconds / 3)
        while not self._keeper_stop.wait(every):
            ids = list(self._jobs)
            if not ids:
                continue
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        psycopg_url(self.url),
                        autocommit=True,
                        application_name=self.application_name,
                        connect_timeout=max(1, int(self.lease_seconds / 3)),
                    )
                conn.execute(sql, (self.lease_seconds, self.worker_id, ids))
            except Exception as exc:
                log.warning("lease keeper: %s", exc)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    async def _listen(self) -> None:
        """Wake-ups and cancellations; reconnects when the connection drops."""
        while True:
            conn = self._listen_conn
            try:
                await conn.execute(f"LISTEN {READY_CHANNEL}")
                await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                self._wake.set()  # claim whatever was announced while we were away
                async for note in conn.notifies():
                    if note.channel == CANCEL_CHANNEL:
                        await self._cancel_local(note.payload)
                    else:
                        self._wake.set()
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                log.warning("listening connection lost (%s); reconnecting", exc)
                with contextlib.suppress(Exception):
                    await conn.close()
                self._listen_conn = await self._connect_again()

    async def _connect_again(self) -> Any:
        delay = 0.1
        while True:
            try:
                return await connect(self.url, application_name=self.application_name)
            except Exception as exc:
                log.warning("cannot reach the database (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _db(self, fn: Callable[[Any], Awaitable[R]]) -> R:
        """Run ``fn(connection)``; when the connection is lost, reconnect and run it again."""
        while True:
            conn = self._work
            try:
                async with self._conn_lock:  # one conversation at a time on the connection
                    return await fn(conn)
            except Exception as exc:
                if not _connection_lost(exc):
                    raise
                async with self._reconnecting:
                    if self._work is conn:
                        log.warning("database connection lost (%s); reconnecting", exc)
                        with contextlib.suppress(Exception):
                            await conn.close()
                        self._work = await self._connect_again()

    async def _cancel_local(self, task_id: str) -> None:
        job = self._jobs.get(task_id)
        if job is None or job.cancel_requested:
            return
        job.cancel_requested = True
        if job.executor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(job.executor.cancel(), 5.0)
        if job.job is not None:
            job.job.cancel()

    async def _drain(self) -> None:
        """On stop: let running tasks finish, then release the rest back to the queue."""
        jobs = [j.job for j in self._jobs.values() if j.job is not None]
        if not jobs:
            return
        _, pending = await asyncio.wait(jobs, timeout=self.shutdown_grace_seconds)
        for job in list(self._jobs.values()):
            if job.job in pending:
                job.releasing = True
                job.job.cancel()
        if pending:
            await asyncio.wait(pending)


async def _fetch(conn: Any, sql: str, params: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)
    rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


def _connection_lost(exc: BaseException) -> bool:
    """The database connection dropped (server restart, network, terminated backend)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the worker cannot run without it
        return False
    lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return lost and not _transient(exc)


def parse_limits(text: str) -> dict[str, int]:
    """``"slow_executor=4,fast_executor=20"`` as a dict; a clear error for anything else."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition("=")
        if not name.strip() or not number.strip().isdigit() or int(number) < 1:
            raise ConfigurationError(
                f"bad executor limit {part!r}: write executor_id=N with N at least 1, "
                "separated by commas (e.g. slow_executor=4,fast_executor=20)"
            )
        limits[name.strip()] = int(number)
    return limits


def _transient(exc: BaseException) -> bool:
    """Deadlocks and serialization failures: the transaction can simply run again."""
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate in ("40P01", "40001")


def run_worker(
    url: str, *, concurrency: int = 16, plugins: Sequence[str] = (), **options: Any
) -> WorkerStats:
    """Run a worker in the foreground until SIGINT/SIGTERM; returns what it did."""
    from aipartnerupflow.core.registry import load_plugins
    from aipartnerupflow.core.settings import CoreSettings

    load_plugins(plugins, from_env=False)  # the caller passes AIPARTNERUPFLOW_PLUGINS' modules

    env_limits = CoreSettings.from_env().executor_limits
    if env_limits and "global_executor_limits" not in options:
        options["global_executor_limits"] = parse_limits(env_limits)

    async def main() -> WorkerStats:
        worker = Worker(url, concurrency=concurrency, **options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, worker.stop)
        await worker.run()
        return worker.stats

    return asyncio.run(main())


if __name__ == "__main__":  # python -m aipartnerupflow.core.worker URL [concurrency] [plugin...]
    import sys

    from aipartnerupflow.core.settings import CoreSettings, load_dotenv

    load_dotenv()
    core_settings = CoreSettings.get()
    logging.basicConfig(level=core_settings.log_level or "WARNING")
    args = sys.argv[1:]
    stats = run_worker(
        args[0],
        concurrency=int(args[1]) if len(args) > 1 else 16,
        plugins=[*core_settings.plugins, *args[2:]],
        lease_seconds=core_settings.lease_seconds,
    )
    print(
        json.dumps(
            {
                "claimed": stats.claimed,
                "finished": stats.finished,
                "stale_writes": stats.stale_writes,
                "reclaimed": stats.reclaimed,
            }
        )
    )
