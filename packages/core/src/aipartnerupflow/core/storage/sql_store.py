"""The SQL task store: SQLAlchemy on one dedicated database thread, with group commit.

DuckDB is synchronous and single-writer, so every statement runs on one thread that owns the
connection. State changes queued with ``write_behind`` are coalesced per task and written with
one columnar statement per batch; reads and immediate writes run in queue order after them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import queue
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from aipartnerupflow.core.errors import (
    DatabaseLockedError,
    StorageError,
    TaskAlreadyExistsError,
)
from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage
from aipartnerupflow.core.storage.migrate import upgrade
from aipartnerupflow.core.storage.schema import build_tasks_table, task_table_name

__all__ = ["SqlTaskStorage"]

log = logging.getLogger("aipartnerupflow.storage")
R = TypeVar("R")

_STOP = object()
_DUCKDB_TYPES = {
    sa.String: "VARCHAR",
    sa.Text: "VARCHAR",
    sa.Integer: "INTEGER",
    sa.Float: "DOUBLE",
    sa.Boolean: "BOOLEAN",
    sa.DateTime: "TIMESTAMPTZ",
    sa.JSON: "VARCHAR",
}
_POSTGRES_TYPES = {
    sa.String: "text",
    sa.Text: "text",
    sa.Integer: "integer",
    sa.Float: "double precision",
    sa.Boolean: "boolean",
    sa.DateTime: "timestamptz",
    sa.JSON: "text",
}


def _to_json(value: Any) -> str | None:
    """JSON text for a column value; empty containers (most of them) skip the encoder."""
    if value is None:
        return None
    if not value and type(value) in (dict, list):
        return "{}" if type(value) is dict else "[]"
    return json.dumps(value)


def _sql_type(column: sa.Column[Any], types: dict[Any, str]) -> str:
    for py_type, sql in types.items():
        if isinstance(column.type, py_type):
            return sql
    raise TypeError(f"no bulk SQL type for column {column.name}")


class _Columnar:
    """Columnar bulk INSERT/UPDATE statements (``unnest`` of array parameters)."""

    def __init__(self, table: sa.Table, dialect: str) -> None:
        self.table = table
        self.postgres = dialect == "postgresql"
        types = _POSTGRES_TYPES if self.postgres else _DUCKDB_TYPES
        self.types = {c.name: _sql_type(c, types) for c in table.columns}
        self.json = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}

    def _expr(self, name: str, index: int) -> str:
        placeholder = "%s" if self.postgres else f"${index}"
        expr = f"unnest({placeholder}::{self.types[name]}[])"
        return f"{expr}::json" if name in self.json else expr

    def _id_expr(self) -> str:
        return "unnest(%s::text[])" if self.postgres else "unnest($1::VARCHAR[])"

    def column(self, name: str, values: Sequence[Any]) -> list[Any]:
        if name in self.json:
            return [_to_json(v) for v in values]
        return list(values)

    def insert(self, conn: sa.Connection, rows: Sequence[TaskModel]) -> None:
        names = list(TASK_COLUMNS)
        exprs = ", ".join(self._expr(n, i + 1) for i, n in enumerate(names))
        sql = f"INSERT INTO {self.table.name} ({', '.join(names)}) SELECT {exprs}"
        params = [self.column(n, [getattr(r, n) for r in rows]) for n in names]
        conn.exec_driver_sql(sql, tuple(params))

    def update(self, conn: sa.Connection, changes: dict[str, dict[str, Any]]) -> None:
        groups: dict[tuple[str, ...], list[str]] = {}
        for task_id, fields in changes.items():
            groups.setdefault(tuple(sorted(fields)), []).append(task_id)
        for names, ids in groups.items():
            sets = ", ".join(f"{n} = u.{n}" for n in names)
            cols = ", ".join(f"{self._expr(n, i + 2)} AS {n}" for i, n in enumerate(names))
            sql = (
                f"UPDATE {self.table.name} SET {sets} FROM (SELECT {self._id_expr()} AS uid, "
                f"{cols}) AS u WHERE {self.table.name}.id = u.uid"
            )
            params = [ids] + [self.column(n, [changes[i][n] for i in ids]) for n in names]
            conn.exec_driver_sql(sql, tuple(params))


@dataclass(slots=True)
class _Call:
    fn: Callable[[sa.Connection], Any]
    future: Future[Any]


class _DbThread(threading.Thread):
    """Owns the connection; runs calls and coalesced write batches in submission order."""

    def __init__(self, store: SqlTaskStorage) -> None:
        super().__init__(name=f"aipartnerupflow-db-{id(store):x}", daemon=True)
        self.store = store
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.conn: sa.Connection | None = None
        self.write_error: BaseException | None = None
        self.batches = 0

    def run(self) -> None:
        pending: dict[str, dict[str, Any]] = {}
        while True:
            batch = [self.jobs.get()]
            while True:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            for job in batch:
                if job is _STOP:
                    self._write(pending)
                    self._disconnect()
                    return
                if not isinstance(job, _Call):
                    pending.setdefault(job[0], {}).update(job[1])
                    continue
                self._write(pending)
                pending = {}
                fn, fut = job.fn, job.future
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    conn = self._connection()
                    result = fn(conn)
                    if conn.in_transaction():
                        conn.commit()
                    fut.set_result(result)
                except BaseException as exc:
                    self._rollback()
                    fut.set_exception(exc)
            self._write(pending)
            pending = {}

    def _connection(self) -> sa.Connection:
        if self.conn is None:
            self.conn = self.store._connect()
        return self.conn

    def _write(self, pending: dict[str, dict[str, Any]]) -> None:
        if not pending:
            return
        try:
            conn = self._connection()
            with conn.begin():
                self.store._columnar.update(conn, pending)
            self.batches += 1
        except BaseException as exc:
            log.error("could not write %d task changes: %s", len(pending), exc)
            self.write_error = exc
        pending.clear()

    def _rollback(self) -> None:
        if self.conn is not None and self.conn.in_transaction():
            try:
                self.conn.rollback()
            except Exception:  # pragma: no cover - connection already broken
                log.exception("rollback failed")

    def _disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class SqlTaskStorage(TaskStorage):
    """A task store on SQLAlchemy: DuckDB (embedded file or in-memory) or PostgreSQL."""

    def __init__(self, url: str, *, engine_kwargs: dict[str, Any] | None = None) -> None:
        self.url = url
        self._engine_kwargs = engine_kwargs or {}
        self._engine: sa.Engine | None = None
        self._table = build_tasks_table(sa.MetaData(), task_table_name())
        self.dialect = "postgresql" if url.startswith("postgresql") else "duckdb"
        self._columnar = _Columnar(self._table, self.dialect)
        self._thread: _DbThread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.statements = 0
        _open_stores.add(self)

    # -- the database thread -------------------------------------------------------------

    @property
    def table(self) -> sa.Table:
        """The tasks table."""
        return self._table

    def _count_statement(self, *args: Any) -> None:
        self.statements += 1

    @property
    def write_batches(self) -> int:
        """How many group-commit batches were written (for benchmarks)."""
        return self._thread.batches if self._thread else 0

    def _connect(self) -> sa.Connection:
        try:
            self._engine = sa.create_engine(
                self.url, poolclass=sa.pool.StaticPool, **self._engine_kwargs
            )
            if self.dialect == "postgresql":
                self._engine = self._engine.execution_options(isolation_level="READ COMMITTED")
            sa.event.listen(self._engine, "before_cursor_execute", self._count_statement)
            conn = self._engine.connect()
            upgrade(conn, self._table.name)
            return conn
        except sa.exc.DBAPIError as exc:
            raise _storage_error(self.url, exc) from None

    def _ensure_thread(self) -> _DbThread:
        thread = self._thread
        if thread is None:
            with self._lock:
                if self._closed:
                    raise StorageError(f"the task store {self.url} is closed")
                if self._thread is None:
                    self._thread = _DbThread(self)
                    self._thread.start()
                thread = self._thread
        return thread

    async def _call(self, fn: Callable[[sa.Connection], R]) -> R:
        fut: Future[R] = Future()
        self._ensure_thread().jobs.put(_Call(fn, fut))
        return await asyncio.wrap_future(fut)

    async def run_sql(self, fn: Callable[[sa.Connection], R]) -> R:
        """Run ``fn(connection)`` on the database thread, after every queued write."""
        return await self._call(fn)

    def call_sync(self, fn: Callable[[sa.Connection], R]) -> R:
        """Run ``fn(connection)`` on the database thread and wait (for non-async callers)."""
        fut: Future[R] = Future()
        self._ensure_thread().jobs.put(_Call(fn, fut))
        return fut.result()

    # -- TaskStorage ---------------------------------------------------------------------

    async def initialize(self) -> None:
        await self._call(lambda conn: None)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Flush, stop the database thread and release the file."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.jobs.put(_STOP)
            thread.join()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def insert_tasks(self, tasks: Sequence[TaskModel]) -> None:
        if not tasks:
            return
        rows = list(tasks)
        now = datetime.now(UTC)
        for row in rows:
            if row.created_at is None:
                row.created_at = now
            if row.updated_at is None:
                row.updated_at = now

        def insert(conn: sa.Connection) -> None:
            try:
                with conn.begin():
                    self._columnar.insert(conn, rows)
            except sa.exc.DBAPIError as exc:
                taken = self._existing(conn, [t.id for t in rows])
                if conn.in_transaction():
                    conn.rollback()
                if not taken:
                    raise StorageError(
                        f"could not insert tasks into {self.url}: {exc.orig}"
                    ) from exc
                raise TaskAlreadyExistsError(
                    "task id(s) already exist in the store: "
                    + ", ".join(sorted(taken))
                    + ". Leave out 'id' to get fresh ids, or pick ids that are not used."
                ) from None

        await self._call(insert)

    def _existing(self, conn: sa.Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 5000):
            chunk = list(ids[i : i + 5000])
            stmt = sa.select(self._table.c.id).where(self._table.c.id.in_(chunk))
            found.update(r[0] for r in conn.execute(stmt))
        return found

    def _select(self, conn: sa.Connection, stmt: sa.Select[Any]) -> list[TaskModel]:
        return [TaskModel(**row._mapping) for row in conn.execute(stmt)]

    async def get_task(self, task_id: str) -> TaskModel | None:
        t = self._table
        rows = await self._call(lambda c: self._select(c, sa.select(t).where(t.c.id == task_id)))
        return rows[0] if rows else None

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskModel]:
        t = self._table
        ids = list(task_ids)
        return await self._call(lambda c: self._select(c, sa.select(t).where(t.c.id.in_(ids))))

    async def get_tree(self, root_id: str) -> list[TaskModel]:
        t = self._table
        stmt = (
            sa.select(t)
            .where(sa.or_(t.c.root_id == root_id, t.c.id == root_id))
            .order_by(t.c.position)
        )
        return await self._call(lambda c: self._select(c, stmt))

    async def get_children(self, parent_id: str) -> list[TaskModel]:
        t = self._table
        stmt = sa.select(t).where(t.c.parent_id == parent_id).order_by(t.c.priority, t.c.position)
        return await self._call(lambda c: self._select(c, stmt))

    def _where(self, q: TaskQuery) -> list[sa.ColumnElement[bool]]:
        t = self._table
        cond: list[sa.ColumnElement[bool]] = []
        if q.user_id is not None:
            cond.append(t.c.user_id == q.user_id)
        if q.status is not None:
            statuses = [q.status] if isinstance(q.status, str) else list(q.status)
            cond.append(t.c.status.in_(statuses))
        if q.root_id is not None:
            cond.append(sa.or_(t.c.root_id == q.root_id, t.c.id == q.root_id))
        if q.parent_id == "":
            cond.append(t.c.parent_id.is_(None))
        elif q.parent_id is not None:
            cond.append(t.c.parent_id == q.parent_id)
        if q.name is not None:
            cond.append(t.c.name == q.name)
        return cond

    async def list_tasks(self, query: TaskQuery) -> list[TaskModel]:
        t = self._table
        order = (
            [t.c.created_at.desc(), t.c.position.desc()]
            if query.newest_first
            else [t.c.created_at, t.c.position]
        )
        stmt = (
            sa.select(t)
            .where(*self._where(query))
            .order_by(*order)
            .limit(max(0, query.limit))
            .offset(max(0, query.offset))
        )
        return await self._call(lambda c: self._select(c, stmt))

    async def count_tasks(self, query: TaskQuery) -> dict[str, int]:
        t = self._table
        stmt = (
            sa.select(t.c.status, sa.func.count()).where(*self._where(query)).group_by(t.c.status)
        )
        rows = await self._call(lambda c: c.execute(stmt).all())
        return {str(status): int(n) for status, n in rows}

    async def update_task(self, task_id: str, fields: dict[str, Any]) -> bool:
        unknown = set(fields) - set(TASK_COLUMNS)
        if unknown:
            raise StorageError(f"unknown task field(s): {', '.join(sorted(unknown))}")
        t = self._table

        def update(conn: sa.Connection) -> bool:
            with conn.begin():
                res = conn.execute(sa.update(t).where(t.c.id == task_id).values(**fields))
            return bool(res.rowcount)

        return await self._call(update)

    def write_behind(self, task_id: str, fields: dict[str, Any]) -> None:
        self._ensure_thread().jobs.put((task_id, fields))

    async def flush(self) -> None:
        await self._call(lambda conn: None)
        thread = self._thread
        if thread is not None and thread.write_error is not None:
            exc, thread.write_error = thread.write_error, None
            raise StorageError(f"task changes could not be written to {self.url}: {exc}") from exc

    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        t = self._table
        ids = list(task_ids)

        def delete(conn: sa.Connection) -> int:
            with conn.begin():
                return int(conn.execute(sa.delete(t).where(t.c.id.in_(ids))).rowcount)

        return await self._call(delete)

    async def interrupted_roots(self, live_owners: Sequence[str]) -> list[str]:
        t = self._table
        owners = list(live_owners)
        root = sa.func.coalesce(t.c.root_id, t.c.id)
        stmt = sa.select(root).where(t.c.status == "in_progress").distinct()
        if owners:
            stmt = stmt.where(sa.or_(t.c.lease_owner.is_(None), t.c.lease_owner.not_in(owners)))
        rows = await self._call(lambda c: c.execute(stmt).all())
        return [str(r[0]) for r in rows]


def _storage_error(url: str, exc: sa.exc.DBAPIError) -> StorageError:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if "Could not set lock on file" in text or "Conflicting lock" in text:
        match = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", text)
        holder = f"process {match.group(2)} ({match.group(1)})" if match else "another process"
        return DatabaseLockedError(
            f"the task database {url.removeprefix('duckdb:///')} is in use by {holder}. "
            "DuckDB allows one process per file: stop that process, talk to it through its API "
            "server, or set AIPARTNERUPFLOW_DATABASE_URL to another database."
        )
    from aipartnerupflow.core.storage import connect_error, redact_url

    return StorageError(
        f"cannot open the task database {redact_url(url)}: {connect_error(exc.orig or exc)}"
    )


_open_stores: weakref.WeakSet[SqlTaskStorage] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_open_stores):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            store.close_sync()
