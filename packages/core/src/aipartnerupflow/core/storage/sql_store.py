"""The SQL task store: one dedicated database thread, with group commit.

DuckDB is synchronous and single-writer, so every statement runs on one thread that owns the
connection (a :mod:`~aipartnerupflow.core.storage.drivers` driver). State changes queued with
``write_behind`` are coalesced per task and written with one columnar statement per batch;
reads and immediate writes run in queue order after them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aipartnerupflow.core.errors import StorageError, TaskAlreadyExistsError
from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel
from aipartnerupflow.core.storable import storable_text
from aipartnerupflow.core.storage import deferred
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage
from aipartnerupflow.core.storage.deferred import JournaledWrites
from aipartnerupflow.core.storage.drivers import (
    Driver,
    DuckDBDriver,
    open_driver,
    taken_ids_error,
)
from aipartnerupflow.core.storage.journal import MAGIC, Journal, journal_path
from aipartnerupflow.core.storage.schema import COLUMN_KINDS, task_table_name

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SqlTaskStorage"]

log = logging.getLogger("aipartnerupflow.storage")
R = TypeVar("R")

_STOP = object()
#: A job that only lets the database thread apply or checkpoint what direct writes left.
_MAINTAIN = object()
_SQL_TYPES = {
    "duckdb": {
        "text": "VARCHAR",
        "int": "INTEGER",
        "float": "DOUBLE",
        "bool": "BOOLEAN",
        "timestamp": "TIMESTAMPTZ",
        "json": "VARCHAR",
    },
    "postgresql": {
        "text": "text",
        "int": "integer",
        "float": "double precision",
        "bool": "boolean",
        "timestamp": "timestamptz",
        "json": "text",
    },
}
_COLUMNS = ", ".join(TASK_COLUMNS)
_JSON_AT = tuple(i for i, name in enumerate(TASK_COLUMNS) if COLUMN_KINDS[name] == "json")
_CHUNK = 5000
#: Up to this many rows, an INSERT binds each value (cheaper than arrays to unnest).
_FEW_ROWS = 4


def _to_json(value: Any) -> str | None:
    """JSON text for a column value; empty containers (most of them) skip the encoder."""
    if value is None:
        return None
    if not value and type(value) in (dict, list):
        return "{}" if type(value) is dict else "[]"
    return json.dumps(value, allow_nan=False)


class _Sql:
    """The store's statements for one table and dialect (``?`` placeholders)."""

    def __init__(self, table: str, dialect: str) -> None:
        self.table = table
        types = _SQL_TYPES[dialect]
        self.types = {name: types[COLUMN_KINDS[name]] for name in TASK_COLUMNS}
        self.json = {name for name in TASK_COLUMNS if COLUMN_KINDS[name] == "json"}

    def value(self, name: str, value: Any) -> Any:
        return _to_json(value) if name in self.json else value

    def _param(self, name: str) -> str:
        expr = f"CAST(? AS {self.types[name]})"
        return f"{expr}::json" if name in self.json else expr

    def _array(self, name: str) -> str:
        expr = f"unnest(CAST(? AS {self.types[name]}[]))"
        return f"{expr}::json" if name in self.json else expr

    def column(self, name: str, values: Sequence[Any]) -> list[Any]:
        if name in self.json:
            return [_to_json(v) for v in values]
        return list(values)

    def select(self, where: str, order: str = "") -> str:
        return f"SELECT {_COLUMNS} FROM {self.table} WHERE {where}{order}"

    def insert(self, driver: Driver, rows: Sequence[TaskModel]) -> None:
        """Every row in one statement: a VALUES list for a few rows (``create_task``), one
        columnar statement for more."""
        if len(rows) <= _FEW_ROWS:
            one = "(" + ", ".join(self._param(n) for n in TASK_COLUMNS) + ")"
            sql = f"INSERT INTO {self.table} ({_COLUMNS}) VALUES " + ", ".join([one] * len(rows))
            driver.fetch(sql, [self.value(n, getattr(r, n)) for r in rows for n in TASK_COLUMNS])
            return
        exprs = ", ".join(self._array(n) for n in TASK_COLUMNS)
        sql = f"INSERT INTO {self.table} ({_COLUMNS}) SELECT {exprs}"
        driver.fetch(sql, [self.column(n, [getattr(r, n) for r in rows]) for n in TASK_COLUMNS])

    def update_many(self, driver: Driver, changes: dict[str, dict[str, Any]]) -> None:
        """One columnar UPDATE per distinct set of changed columns."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for task_id, fields in changes.items():
            groups.setdefault(tuple(sorted(fields)), []).append(task_id)
        for names, ids in groups.items():
            sets = ", ".join(f"{n} = u.{n}" for n in names)
            cols = ", ".join(f"{self._array(n)} AS {n}" for n in names)
            sql = (
                f"UPDATE {self.table} SET {sets} FROM (SELECT unnest(CAST(? AS TEXT[])) AS uid, "
                f"{cols}) AS u WHERE {self.table}.id = u.uid"
            )
            params = [ids] + [self.column(n, [changes[i][n] for i in ids]) for n in names]
            driver.fetch(sql, params)

    def tree_facts(self, driver: Driver, ids: Sequence[str]) -> dict[str, tuple[str | None, bool]]:
        """``(root_id, has_children)`` of those of a few tasks that exist (one statement)."""
        sql = (
            f"SELECT id, root_id, has_children FROM {self.table} "
            f"WHERE id IN ({', '.join('?' * len(ids))})"
        )
        return {r[0]: (r[1], bool(r[2])) for r in driver.fetch(sql, list(ids))}

    def update_one(self, driver: Driver, task_id: str, fields: dict[str, Any]) -> bool:
        sets = ", ".join(f"{n} = {self._param(n)}" for n in fields)
        sql = f"UPDATE {self.table} SET {sets} WHERE id = ? RETURNING id"
        params = [self.value(n, v) for n, v in fields.items()] + [task_id]
        return bool(driver.fetch(sql, params))

    @staticmethod
    def where(q: TaskQuery) -> tuple[str, list[Any]]:
        cond: list[str] = []
        params: list[Any] = []
        if q.user_id is not None:
            cond.append("user_id = ?")
            params.append(q.user_id)
        if q.status is not None:
            cond.append("status IN (SELECT unnest(CAST(? AS TEXT[])))")
            params.append([q.status] if isinstance(q.status, str) else list(q.status))
        if q.root_id is not None:
            cond.append("(root_id = ? OR id = ?)")
            params += [q.root_id, q.root_id]
        if q.parent_id == "":
            cond.append("parent_id IS NULL")
        elif q.parent_id is not None:
            cond.append("parent_id = ?")
            params.append(q.parent_id)
        if q.name is not None:
            cond.append("name = ?")
            params.append(q.name)
        if q.search:
            text = _like_escape(q.search)
            cond.append("(lower(name) LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')")
            params += [f"%{text.lower()}%", f"{text}%"]
        return (" AND ".join(cond) or "TRUE"), params


def _like_escape(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_RECONNECTS = 5


def _cause(exc: BaseException) -> str:
    from aipartnerupflow.core.storage import db_error_text

    return db_error_text(exc)


def _disconnected(exc: BaseException) -> bool:
    """The database connection is gone (server restart, terminated backend, network)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if _disconnect_error(current):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _disconnect_error(exc: BaseException) -> bool:
    if getattr(exc, "connection_invalidated", False):
        return True
    cause = getattr(exc, "orig", None) or exc
    try:
        import psycopg
    except ImportError:
        return False
    if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    name = type(exc).__name__
    return name in ("ResourceClosedError", "PendingRollbackError")


def _with_times(tasks: Sequence[TaskModel]) -> list[TaskModel]:
    """The new rows, with ``created_at``/``updated_at`` set where they are not."""
    rows = list(tasks)
    now = datetime.now(UTC)
    for row in rows:
        if row.created_at is None:
            row.created_at = now
        if row.updated_at is None:
            row.updated_at = now
    return rows


class _Waiter:
    """One write-ahead caller: its loop, its future, the ids it waits for."""

    __slots__ = ("future", "ids", "loop")

    def __init__(self, ids: Sequence[str]) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[dict[str, str]] = self.loop.create_future()
        self.ids = ids


class _Ahead:
    """Changes to journal as one batch, in the order they were made, and the write-ahead
    callers waiting until they are durable (none for gathered write-behind changes)."""

    __slots__ = ("changes", "waiters")

    def __init__(self) -> None:
        self.changes: dict[str, dict[str, Any]] = {}
        self.waiters: list[_Waiter] = []

    def wait(self, changes: dict[str, dict[str, Any]]) -> _Waiter:
        """Add changes whose caller waits until they are durable; returns its waiter."""
        self.add(changes)
        waiter = _Waiter(list(changes))
        self.waiters.append(waiter)
        return waiter

    def add(self, changes: dict[str, dict[str, Any]]) -> None:
        mine = self.changes
        for task_id, fields in changes.items():
            known = mine.get(task_id)
            if known is None:
                mine[task_id] = dict(fields)
            else:
                known.update(fields)


def _resolve_all(resolutions: list[tuple[_Waiter, dict[str, str]]]) -> None:
    """Resolve the futures of one batch (on their loop)."""
    for waiter, failed in resolutions:
        if not waiter.future.done():
            waiter.future.set_result(failed)


def _tell(aheads: list[_Ahead], failed: dict[str, str]) -> None:
    """Tell the write-ahead callers of one batch which of their rows failed: one wake-up per
    event loop for the whole batch, not one per caller (none for the caller's own loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiter, dict[str, str]]]] = {}
    for ahead in aheads:
        for waiter in ahead.waiters:
            mine = {i: failed[i] for i in waiter.ids if i in failed} if failed else {}
            by_loop.setdefault(waiter.loop, []).append((waiter, mine))
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, resolutions in by_loop.items():
        if loop is running:
            _resolve_all(resolutions)
            continue
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve_all, resolutions)


@dataclass(slots=True)
class _Call:
    fn: Callable[[Any], Any]
    future: Future[Any]
    sqlalchemy: bool
    #: False for calls that read nothing (flush): journaled changes need not be applied.
    reads: bool = True


class _DbThread(threading.Thread):
    """Owns the connection; runs calls and coalesced write batches in submission order."""

    def __init__(self, store: SqlTaskStorage) -> None:
        super().__init__(name=f"aipartnerupflow-db-{id(store):x}", daemon=True)
        self.store = store
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.driver: Driver | None = None
        self.write_error: BaseException | None = None
        self.batches = 0
        self.writes: JournaledWrites | None = None
        #: Held while this thread works on the store; an event loop that gets it while the
        #: queue is empty journals a batch itself (:meth:`flush_gathered`).
        self.lock = threading.Lock()
        #: Guards the job counts and ``gathered``, so jobs and direct writes keep their order.
        self.gate = threading.Lock()
        self.submitted = 0
        self.processed = 0
        #: Changes an event loop gathered while the queue was empty (:meth:`gather`).
        self.gathered: _Ahead | None = None

    def put(self, job: Any) -> None:
        """Queue a job (after the changes an event loop gathered before it)."""
        with self.gate:
            gathered, self.gathered = self.gathered, None
            if gathered is not None:
                self.submitted += 1
                self.jobs.put(gathered)
            self.submitted += 1
            self.jobs.put(job)

    def gather(
        self, loop: asyncio.AbstractEventLoop, changes: dict[str, dict[str, Any]], wait: bool
    ) -> _Waiter | bool:
        """While nothing is queued, keep changes in memory, to be journaled together when
        ``loop`` ends its pass (:meth:`flush_gathered`): one record for the starts and ends
        of the pass, and no thread hand-off for write-ahead callers. False when the changes
        must be queued instead; with ``wait``, the caller's waiter."""
        writes = self.writes
        if writes is None or writes.shared:
            return False
        with self.gate:
            if self.submitted != self.processed:
                return False
            gathered = self.gathered
            first = gathered is None
            if gathered is None:
                gathered = self.gathered = _Ahead()
            waiter = None
            if wait:
                waiter = gathered.wait(changes)
            else:
                gathered.add(changes)
        if first:
            loop.call_soon(self.flush_gathered)
        return waiter if waiter is not None else True

    def flush_gathered(self) -> None:
        """Journal what :meth:`gather` kept: on this thread when the database thread is
        idle and someone waits for it (durable before this returns), else queued."""
        writes = self.writes
        with self.gate:
            gathered, self.gathered = self.gathered, None
            if gathered is None:
                return
            direct = (
                bool(gathered.waiters)
                and writes is not None
                and not writes.shared
                and self.submitted == self.processed
                and self.lock.acquire(blocking=False)
            )
            if not direct:
                self.submitted += 1
                self.jobs.put(gathered)
                return
        assert writes is not None
        try:
            if self.writes is writes:
                failed = self._journal(writes, gathered.changes, maintain=False)
                self.batches += 1
                due = writes.maintenance_due
            else:  # reconnected meanwhile: let the database thread write them
                with self.gate:
                    self.submitted += 1
                    self.jobs.put(gathered)
                return
        finally:
            self.lock.release()
        if due:
            self.put(_MAINTAIN)
        _tell([gathered], failed)

    def _journal(
        self, writes: JournaledWrites, pending: dict[str, dict[str, Any]], maintain: bool
    ) -> dict[str, str]:
        try:
            return writes.write(pending, maintain)
        except Exception as exc:  # the journal cannot be written: none of these is stored
            log.error("task changes could not be journaled: %s", exc)
            self.write_error = exc
            reason = storable_text(f"the task's state could not be stored: {_cause(exc)}")
            return dict.fromkeys(pending, reason or "")

    def _next_job(self) -> Any:
        """The next job; while changes are durable only in the journal, an idle store
        commits them to the file (a checkpoint) and empties the journal."""
        while True:
            writes = self.writes
            if writes is None:
                return self.jobs.get()
            try:  # polls even when clean: an event loop's direct writes may dirty it
                return self.jobs.get(timeout=deferred.IDLE_CHECKPOINT_SECONDS)
            except queue.Empty:
                pass
            with self.lock:
                if self.writes is not writes or not writes.dirty:
                    continue
                if time.monotonic() - writes.last_write < deferred.IDLE_CHECKPOINT_SECONDS:
                    continue  # an event loop is still writing directly
                try:
                    writes.checkpoint()
                    continue
                except Exception:  # the journal still holds the changes: replayed on open
                    log.exception("checkpoint of %s failed", self.store.label)
            return self.jobs.get()  # after a failed checkpoint: wait for work, not the clock

    def run(self) -> None:
        while True:
            batch = [self._next_job()]
            while True:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            with self.lock:
                stop = self._run_batch(batch)
                with self.gate:
                    self.processed += len(batch)
            if stop:
                return

    def _run_batch(self, batch: list[Any]) -> bool:
        """Run one batch of jobs in order; True when it ends with the stop job."""
        pending: dict[str, dict[str, Any]] = {}
        waiters: list[_Ahead] = []
        for job in batch:
            if job is _STOP:
                self._commit(pending, waiters)
                self._disconnect()
                return True
            if job is _MAINTAIN:
                continue
            if isinstance(job, _Ahead):
                for task_id, fields in job.changes.items():
                    pending.setdefault(task_id, {}).update(fields)
                if job.waiters:
                    waiters.append(job)
                continue
            if not isinstance(job, _Call):
                pending.setdefault(job[0], {}).update(job[1])
                continue
            self._commit(pending, waiters)
            pending, waiters = {}, []
            self._run_call(job)
        self._commit(pending, waiters)
        writes = self.writes
        if writes is not None and writes.maintenance_due:
            try:
                writes.maintain()
            except Exception:  # the journal still holds the changes: replayed on open
                log.exception("checkpoint of %s failed", self.store.label)
        return False

    def _commit(self, pending: dict[str, dict[str, Any]], waiters: list[_Ahead]) -> None:
        """Write one batch, then tell the write-ahead callers which of their rows failed."""
        failed = self._write(pending)
        if waiters:
            _tell(waiters, failed)

    def _run_call(self, job: _Call) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        delay = 0.05
        for attempt in range(_RECONNECTS + 1):
            try:
                driver = self._driver()
                writes = self.writes
                if writes is not None and (job.reads or job.sqlalchemy):
                    writes.before_call(job.sqlalchemy)
                result = job.fn(driver.sa_connection() if job.sqlalchemy else driver)
                driver.end_call(failed=False)
                if writes is not None:
                    writes.after_call()
                job.future.set_result(result)
                return
            except BaseException as exc:
                if self.driver is not None:
                    try:
                        self.driver.end_call(failed=True)
                        if self.writes is not None:
                            self.writes.failed_call()
                    except Exception:  # pragma: no cover - connection already broken
                        log.exception("rollback failed")
                if not _disconnected(exc) or attempt == _RECONNECTS:
                    if _disconnected(exc):
                        self._disconnect()  # the next call connects again
                    job.future.set_exception(exc)
                    return
                # The server ended the session, so its open transaction was rolled back:
                # run the call again on a new connection.
                log.warning("database connection lost (%s); running the call again", _cause(exc))
                self._disconnect()
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _driver(self) -> Driver:
        if self.driver is None:
            driver = self.store._new_driver()
            try:
                driver.open()
                self.writes = _journaled_writes(driver, self.store)
            except BaseException:
                driver.close()
                raise
            self.driver = driver
        return self.driver

    def _write(self, pending: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Write a batch in one transaction; returns the rows that could not be stored.

        A lost connection is retried on a new one; any other error isolates the bad rows:
        each row is written on its own, and a row that still fails is marked failed with the
        reason, so one bad value never costs the other rows of the batch.
        """
        if not pending:
            return {}
        if self.driver is None and self.store.dialect == "duckdb":
            with contextlib.suppress(Exception):  # reported by the write below
                self._driver()
        writes = self.writes
        if writes is not None:
            failed = self._journal(writes, pending, maintain=True)
            self.batches += 1
            pending.clear()
            return failed
        delay = 0.05
        for attempt in range(_RECONNECTS + 1):
            try:
                driver = self._driver()
                with driver.transaction():
                    self.store._sql.update_many(driver, pending)
                self.batches += 1
                pending.clear()
                return {}
            except BaseException as exc:
                if not _disconnected(exc) or attempt == _RECONNECTS:
                    error: BaseException = exc
                    break
                log.warning("database connection lost (%s); writing the batch again", _cause(exc))
                self._disconnect()
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        failed = self._isolate(pending, error)
        pending.clear()
        return failed

    def _isolate(self, pending: dict[str, dict[str, Any]], error: BaseException) -> dict[str, str]:
        if len(pending) > 1:
            log.warning(
                "a batch of %d task changes failed (%s); writing them one by one",
                len(pending),
                _cause(error),
            )
        failed: dict[str, str] = {}
        for task_id, fields in pending.items():
            try:
                driver = self._driver()
                with driver.transaction():
                    self.store._sql.update_many(driver, {task_id: fields})
                continue
            except BaseException as exc:
                reason = storable_text(f"the task's state could not be stored: {_cause(exc)}")
                assert reason is not None
                failed[task_id] = reason
                if _disconnected(exc):
                    self._disconnect()
            log.error("task %s: %s", task_id, failed[task_id])
            now = datetime.now(UTC)
            fallback = {
                "status": "failed",
                "error": failed[task_id],
                "completed_at": now,
                "updated_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            try:
                driver = self._driver()
                with driver.transaction():
                    self.store._sql.update_many(driver, {task_id: fallback})
            except BaseException as exc:
                log.error("task %s: could not even record that failure: %s", task_id, _cause(exc))
                self.write_error = exc
        return failed

    def _disconnect(self) -> None:
        writes, self.writes = self.writes, None
        if writes is not None:
            try:
                writes.close()
            except Exception:  # the journal keeps the changes: replayed on the next open
                log.exception("final checkpoint of %s failed", self.store.label)
        if isinstance(self.driver, DuckDBDriver):
            _leave_file(self.driver.path, self.store)
        if self.driver is not None:
            self.driver.close()
            self.driver = None


#: The stores of this process that have a DuckDB file open, by its real path. DuckDB lets one
#: process open a file more than once; only the first store keeps a journal, and while others
#: share the file it commits every write at once (so they see it and never meet its open
#: transaction).
_files: dict[str, list[SqlTaskStorage]] = {}
_files_lock = threading.Lock()


def _share_file(path: str, store: SqlTaskStorage) -> bool:
    """Register ``store`` on a DuckDB file; True when it is the only store of the process on
    it (it may keep a journal). Otherwise the journaling store commits what it holds first."""
    key = os.path.realpath(path)
    with _files_lock:
        stores = _files.setdefault(key, [])
        others = [s for s in stores if s is not store]
        stores.append(store)
    for other in others:
        other._share_journal()
    return not others


def _leave_file(path: str, store: SqlTaskStorage) -> None:
    key = os.path.realpath(path)
    with _files_lock:
        stores = [s for s in _files.get(key, []) if s is not store]
        if stores:
            _files[key] = stores
        else:
            _files.pop(key, None)
    if len(stores) == 1:
        thread = stores[0]._thread
        if thread is not None and thread.writes is not None:
            thread.writes.shared = False


def _journaled_writes(driver: Driver, store: SqlTaskStorage) -> JournaledWrites | None:
    """The journal of a DuckDB file (replayed now), or None for other databases, a file
    opened read-only, and a file another store of this process journals already."""
    if not isinstance(driver, DuckDBDriver) or driver.path.startswith(":memory:"):
        return None
    path = journal_path(driver.path)
    if not driver.journaled:  # read-only: it cannot apply a journal, so it must be empty
        if os.path.exists(path) and os.path.getsize(path) > len(MAGIC):
            raise StorageError(
                f"the task database {driver.path} has journaled changes that are not in the "
                "file yet; open it once without access_mode=READ_ONLY to apply them"
            )
        return None
    if not _share_file(driver.path, store):
        return None
    writes = JournaledWrites(driver, store._sql, Journal(path))
    try:
        writes.open()
    except BaseException:
        _leave_file(driver.path, store)
        raise
    with _files_lock:  # another store may have opened the file meanwhile
        writes.shared = len(_files.get(os.path.realpath(driver.path), [])) > 1
    return writes


class SqlTaskStorage(TaskStorage):
    """A task store on DuckDB (embedded file or in-memory) or PostgreSQL."""

    def __init__(self, url: str, *, engine_kwargs: dict[str, Any] | None = None) -> None:
        from aipartnerupflow.core.storage import redact_url

        self.url = url
        self.label = redact_url(url)
        self._engine_kwargs = engine_kwargs or {}
        self._table_name = task_table_name()
        self._table: sa.Table | None = None
        self.dialect = "postgresql" if url.startswith("postgresql") else "duckdb"
        self._sql = _Sql(self._table_name, self.dialect)
        self._json_loads: Callable[[Any], Any] | None = None
        self._thread: _DbThread | None = None
        self._lock = threading.Lock()
        self._closed = False
        _open_stores.add(self)

    # -- the database thread -------------------------------------------------------------

    @property
    def table(self) -> sa.Table:
        """The tasks table as SQLAlchemy metadata (loads SQLAlchemy)."""
        if self._table is None:
            import sqlalchemy as sa

            from aipartnerupflow.core.storage.schema import build_tasks_table

            self._table = build_tasks_table(sa.MetaData(), self._table_name)
        return self._table

    @property
    def statements(self) -> int:
        """SQL statements sent so far (for benchmarks)."""
        thread = self._thread
        return thread.driver.statements if thread and thread.driver else 0

    @property
    def write_batches(self) -> int:
        """How many group-commit batches were written (for benchmarks)."""
        return self._thread.batches if self._thread else 0

    def _new_driver(self) -> Driver:
        driver = open_driver(self.url, self._table_name, self._engine_kwargs)
        self._json_loads = driver.decode_json
        return driver

    def _share_journal(self) -> None:
        """Another store of this process opened our DuckDB file: from now on commit every
        write at once, starting with what the journal holds (waits for it)."""
        thread = self._thread
        if thread is None or thread.writes is None:
            return
        thread.writes.shared = True
        with contextlib.suppress(Exception):  # closing meanwhile commits it anyway
            self._submit(lambda driver: None, sqlalchemy=False).result(timeout=60)

    def _ensure_thread(self) -> _DbThread:
        thread = self._thread
        if thread is None:
            with self._lock:
                if self._closed:
                    raise StorageError(f"the task store {self.label} is closed")
                if self._thread is None:
                    self._thread = _DbThread(self)
                    self._thread.start()
                thread = self._thread
        return thread

    def _submit(self, fn: Callable[[Any], R], sqlalchemy: bool, reads: bool = True) -> Future[R]:
        fut: Future[R] = Future()
        self._ensure_thread().put(_Call(fn, fut, sqlalchemy, reads))
        return fut

    async def _call(self, fn: Callable[[Driver], R]) -> R:
        return await asyncio.wrap_future(self._submit(fn, sqlalchemy=False))

    async def run_sql(self, fn: Callable[[sa.Connection], R]) -> R:
        """Run ``fn(connection)`` with a SQLAlchemy connection on the database thread, after
        every queued write."""
        return await asyncio.wrap_future(self._submit(fn, sqlalchemy=True))

    def call_sync(self, fn: Callable[[sa.Connection], R]) -> R:
        """Like :meth:`run_sql`, but waits in the calling thread (for non-async callers)."""
        return self._submit(fn, sqlalchemy=True).result()

    def _models(self, rows: list[tuple[Any, ...]]) -> list[TaskModel]:
        loads = self._json_loads
        if loads is None:  # pragma: no cover - rows come after the driver exists
            raise StorageError("the task store is not open")
        models = []
        for row in rows:
            values = list(row)
            for i in _JSON_AT:
                values[i] = loads(values[i])
            models.append(TaskModel(*values))
        return models

    async def _select(self, where: str, params: Sequence[Any], order: str = "") -> list[TaskModel]:
        sql = self._sql.select(where, order)
        return self._models(await self._call(lambda d: d.fetch(sql, params)))

    # -- TaskStorage ---------------------------------------------------------------------

    async def initialize(self) -> None:
        await self._call(lambda driver: None)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Flush, stop the database thread and release the file."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.put(_STOP)
            thread.join()

    async def insert_tasks(self, tasks: Sequence[TaskModel]) -> None:
        if not tasks:
            return
        rows = _with_times(tasks)

        def insert(driver: Driver) -> list[str]:
            writes = self._thread.writes if self._thread is not None else None
            try:
                if writes is not None:
                    return writes.insert(rows)  # durable by the journal
                with driver.transaction():
                    self._sql.insert(driver, rows)
                return []
            except Exception as exc:
                if writes is None:
                    taken = self._existing(driver, [t.id for t in rows])
                    if taken:
                        return sorted(taken)
                raise StorageError(
                    f"could not insert tasks into {self.label}: {_cause(exc)}"
                ) from exc

        journaled = self._journaled()
        taken = await asyncio.wrap_future(self._submit(insert, False, reads=not journaled))
        if taken:
            raise taken_ids_error(taken)

    async def add_task(self, task: TaskModel, fresh_id: bool = False) -> bool:
        """One round trip: on a DuckDB file the row is durable by the journal (one
        ``fdatasync``) and reaches the file with the next read; elsewhere parent lookup,
        insert and the parent's flag are one transaction."""
        _with_times([task])

        def add(driver: Driver) -> str:
            writes = self._thread.writes if self._thread is not None else None
            try:
                if writes is not None:
                    return "ok" if writes.add(task, fresh_id) else "no parent"
                with driver.transaction():
                    return self._add_in_transaction(driver, task)
            except TaskAlreadyExistsError:
                return "taken"
            except StorageError:
                raise
            except Exception as exc:
                raise StorageError(
                    f"could not insert a task into {self.label}: {_cause(exc)}"
                ) from exc

        journaled = self._journaled()
        outcome = await asyncio.wrap_future(self._submit(add, False, reads=not journaled))
        if outcome == "taken":
            raise taken_ids_error([task.id])
        return outcome == "ok"

    def _add_in_transaction(self, driver: Driver, task: TaskModel) -> str:
        wanted = [task.id] if task.parent_id is None else [task.id, task.parent_id]
        known = self._sql.tree_facts(driver, wanted)
        if task.id in known:
            return "taken"
        if task.parent_id is not None:
            if task.parent_id not in known:
                return "no parent"
            root_id, has_children = known[task.parent_id]
            task.root_id = root_id or task.parent_id
        self._sql.insert(driver, [task])
        if task.parent_id is not None and not has_children:
            self._sql.update_one(driver, task.parent_id, {"has_children": True})
        return "ok"

    def _journaled(self) -> bool:
        """Writes go through the DuckDB file's journal (so they need no applied overlay)."""
        thread = self._thread
        return thread is not None and thread.writes is not None

    def _existing(self, driver: Driver, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        sql = f"SELECT id FROM {self._table_name} WHERE id IN (SELECT unnest(CAST(? AS TEXT[])))"
        for i in range(0, len(ids), _CHUNK):
            found.update(r[0] for r in driver.fetch(sql, [list(ids[i : i + _CHUNK])]))
        return found

    async def get_task(self, task_id: str) -> TaskModel | None:
        rows = await self._select("id = ?", [task_id])
        return rows[0] if rows else None

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskModel]:
        return await self._select("id IN (SELECT unnest(CAST(? AS TEXT[])))", [list(task_ids)])

    async def get_tree(self, root_id: str) -> list[TaskModel]:
        return await self._select("root_id = ? OR id = ?", [root_id, root_id], " ORDER BY position")

    async def get_children(self, parent_id: str) -> list[TaskModel]:
        return await self._select("parent_id = ?", [parent_id], " ORDER BY priority, position")

    async def list_tasks(self, query: TaskQuery) -> list[TaskModel]:
        where, params = self._sql.where(query)
        desc = " DESC" if query.newest_first else ""
        order = f" ORDER BY created_at{desc}, position{desc} LIMIT ? OFFSET ?"
        return await self._select(
            where, [*params, max(0, query.limit), max(0, query.offset)], order
        )

    async def count_tasks(self, query: TaskQuery) -> dict[str, int]:
        where, params = self._sql.where(query)
        sql = f"SELECT status, count(*) FROM {self._table_name} WHERE {where} GROUP BY status"
        rows = await self._call(lambda d: d.fetch(sql, params))
        return {str(status): int(n) for status, n in rows}

    async def update_task(self, task_id: str, fields: dict[str, Any]) -> bool:
        unknown = set(fields) - set(TASK_COLUMNS)
        if unknown:
            raise StorageError(f"unknown task field(s): {', '.join(sorted(unknown))}")
        if not fields:
            return await self.get_task(task_id) is not None

        def update(driver: Driver) -> bool:
            with driver.transaction():
                return self._sql.update_one(driver, task_id, fields)

        return await self._call(update)

    def write_behind(self, task_id: str, fields: dict[str, Any]) -> None:
        thread = self._ensure_thread()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or not thread.gather(loop, {task_id: fields}, wait=False):
            thread.put((task_id, fields))

    def write_ahead(self, changes: dict[str, dict[str, Any]]) -> asyncio.Future[dict[str, str]]:
        thread = self._ensure_thread()
        waiter = thread.gather(asyncio.get_running_loop(), changes, wait=True)
        if not isinstance(waiter, _Waiter):
            ahead = _Ahead()
            waiter = ahead.wait(changes)
            thread.put(ahead)
        return waiter.future

    async def flush(self) -> None:
        await asyncio.wrap_future(self._submit(lambda driver: None, False, reads=False))
        thread = self._thread
        if thread is not None and thread.write_error is not None:
            exc, thread.write_error = thread.write_error, None
            raise StorageError(
                f"task changes could not be written to {self.label}: {_cause(exc)}"
            ) from exc

    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        ids = list(task_ids)
        sql = (
            f"DELETE FROM {self._table_name} "
            "WHERE id IN (SELECT unnest(CAST(? AS TEXT[]))) RETURNING id"
        )

        def delete(driver: Driver) -> int:
            with driver.transaction():
                return len(driver.fetch(sql, [ids]))

        return await self._call(delete)

    async def interrupted_roots(self, live_owners: Sequence[str]) -> list[str]:
        live = list(live_owners)
        sql = (
            f"SELECT coalesce(root_id, id) AS root FROM {self._table_name} "
            "WHERE dispatch <> 'queue' GROUP BY coalesce(root_id, id) "
            "HAVING count(*) FILTER (WHERE status NOT IN ('completed', 'failed', 'cancelled')) > 0"
            " AND count(*) FILTER (WHERE started_at IS NOT NULL OR status = 'in_progress') > 0"
            " AND count(*) FILTER (WHERE status = 'in_progress' AND lease_owner IN "
            "(SELECT unnest(CAST(? AS TEXT[])))) = 0 ORDER BY 1"
        )
        rows = await self._call(lambda d: d.fetch(sql, [live]))
        return [str(r[0]) for r in rows]


_open_stores: weakref.WeakSet[SqlTaskStorage] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_open_stores):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            store.close_sync()
