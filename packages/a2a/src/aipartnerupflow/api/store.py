"""A2A task records and push configs, persisted in the engine's own database.

a2a-sdk's ``DatabaseTaskStore`` needs an async SQLAlchemy engine, which DuckDB does not have,
so these stores implement the SDK's interfaces over the core store's database thread. Each
record is the protobuf Task as JSON plus the columns needed to filter and page.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from a2a.server.context import ServerCallContext
from a2a.server.tasks import PushNotificationConfigStore, TaskStore
from a2a.server.tasks.push_notification_config_store import normalize_push_notification_config
from a2a.types import (
    ListTasksRequest,
    ListTasksResponse,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import A2AError, InternalError, InvalidParamsError
from a2a.utils.task import ListTasksCursor, decode_list_tasks_cursor, encode_list_tasks_cursor
from google.protobuf.json_format import MessageToJson, Parse

from aipartnerupflow.api.convert import EVENT_KEY
from aipartnerupflow.api.security import caller_of
from aipartnerupflow.core.storage.base import TaskStorage

__all__ = [
    "A2A_PUSH_TABLE",
    "A2A_TASK_TABLE",
    "STORAGE_ERROR_MESSAGE",
    "SqlPushConfigStore",
    "SqlTaskStore",
    "guarded",
    "owner_of",
    "run_sql",
    "sees_all",
    "strip_engine_event",
]

log = logging.getLogger("aipartnerupflow.api.store")
R = TypeVar("R")

A2A_TASK_TABLE = "apflow_a2a_tasks"
_TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_INPUT_REQUIRED,
        TaskState.TASK_STATE_AUTH_REQUIRED,
    }
)
A2A_PUSH_TABLE = "apflow_a2a_push_configs"


def owner_of(context: ServerCallContext | None) -> str:
    """The owner recorded for a call: the authenticated user id, or ``""`` without auth."""
    caller = caller_of(context)
    return caller.user_id if caller is not None else ""


def sees_all(context: ServerCallContext | None) -> bool:
    """True when the caller may read every owner's records (admins; everyone without auth)."""
    caller = caller_of(context)
    return caller is None or caller.is_admin


async def run_sql(storage: TaskStorage, fn: Callable[[sa.Connection], R]) -> R:
    """Run ``fn(connection)`` where the core store runs its own statements."""
    return await storage.run_sql(fn)


#: What a client is told when the database fails (the detail goes to the log only).
STORAGE_ERROR_MESSAGE = (
    "the task database could not complete the request (the server logged why); try again"
)


async def guarded(call: Awaitable[R]) -> R:
    """``await call``, with a database failure turned into a generic A2A ``InternalError``.

    The driver's text (SQL, parameters, addresses) never reaches the client; the log gets
    one line with the values masked (:func:`~aipartnerupflow.core.storage.db_error_text`).
    """
    from aipartnerupflow.core.storage import db_error_text, is_database_error

    try:
        return await call
    except A2AError:
        raise
    except Exception as exc:
        if not is_database_error(exc):
            raise
        log.error("task database error (%s): %s", type(exc).__name__, db_error_text(exc))
        raise InternalError(message=STORAGE_ERROR_MESSAGE) from None


def _tasks_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("updated_ns", sa.BigInteger),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger),  # cluster mode's compare-and-swap (a2a_0002)
    )


def _push_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("task_id", sa.String(255), primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("config_id", sa.String(255), primary_key=True),
        sa.Column("config", sa.Text, nullable=False),
    )


class _SqlStore:
    """Shared plumbing: the A2A migrations are applied on first use (they create the tables)."""

    def __init__(self, storage: TaskStorage, table: sa.Table) -> None:
        self.storage = storage
        self.table = table
        self._ready = False

    async def _run(self, fn: Callable[[sa.Connection], R]) -> R:
        if not self._ready:
            from aipartnerupflow.api.migrations import MIGRATIONS
            from aipartnerupflow.core.storage.plugin_migrations import apply_migrations

            await guarded(apply_migrations(self.storage, [MIGRATIONS]))
            self._ready = True
        return await guarded(run_sql(self.storage, fn))


def strip_engine_event(task: Task) -> None:
    """Drop the engine event the SDK merges into the Task from each status update's metadata.

    It belongs to the update (streams and push keep it); the Task itself keeps only its own
    ``aipartnerupflow`` entry. The SDK's in-memory Task is changed too, so what a call returns
    matches what is stored.
    """
    if task.HasField("metadata") and EVENT_KEY in task.metadata:
        del task.metadata[EVENT_KEY]


def _updated_ns(task: Task) -> int | None:
    if task.HasField("status") and task.status.HasField("timestamp"):
        return int(task.status.timestamp.ToNanoseconds())
    return None


class SqlTaskStore(_SqlStore, TaskStore):
    """The SDK's ``TaskStore`` over the engine's database (table ``apflow_a2a_tasks``).

    Records are scoped to their owner (the authenticated user); admins, and every caller when
    auth is off, see all records. An update never changes a record's owner.

    With ``cache=True`` (right when this process is the only writer, as with DuckDB) recent
    records are served from memory, and intermediate states are written behind in batches;
    a terminal state is durable before ``save`` returns.
    """

    def __init__(
        self,
        storage: TaskStorage,
        *,
        cache: bool | None = None,
        cache_size: int = 10_000,
    ) -> None:
        super().__init__(storage, _tasks_table(sa.MetaData(), A2A_TASK_TABLE))
        self.cache_enabled = storage.url.startswith("duckdb") if cache is None else cache
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._cache_size = cache_size
        self._dirty: dict[str, tuple[str, Task]] = {}
        self.write_behind_seconds = 0.05
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()

    async def save(self, task: Task, context: ServerCallContext) -> None:
        strip_engine_event(task)
        owner = owner_of(context)
        if not self.cache_enabled:
            await self._write({task.id: (owner, task)})
            return
        cached = self._cache.get(task.id)
        if cached is not None:
            owner = cached[0]
        snapshot = Task()
        snapshot.CopyFrom(task)
        self._remember(task.id, owner, snapshot.SerializeToString())
        self._dirty[task.id] = (owner, snapshot)
        if task.status.state in _TERMINAL_STATES or cached is None:
            await self.flush()
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="a2a-store-flush")

    def _remember(self, task_id: str, owner: str, data: bytes) -> None:
        self._cache[task_id] = (owner, data)
        self._cache.move_to_end(task_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(self.write_behind_seconds)  # coalesce a burst of updates
            await self.flush()
        except Exception:
            log.exception("could not write A2A task records (they stay queued)")

    async def flush(self) -> None:
        """Write every pending record (one transaction)."""
        async with self._flush_lock:
            while self._dirty:
                rows, self._dirty = self._dirty, {}
                try:
                    await self._write(rows)
                except BaseException:
                    for key, value in rows.items():
                        self._dirty.setdefault(key, value)
                    raise

    async def _write(self, tasks: dict[str, tuple[str, Task]]) -> None:
        t = self.table
        rows = {
            task_id: {
                "context_id": task.context_id,
                "state": str(task.status.state),
                "updated_ns": _updated_ns(task),
                "task": MessageToJson(task, indent=None),
            }
            for task_id, (_, task) in tasks.items()
        }

        def upsert(conn: sa.Connection) -> None:
            with conn.begin():
                for task_id, values in rows.items():
                    done = conn.execute(sa.update(t).where(t.c.id == task_id).values(**values))
                    if not done.rowcount:
                        conn.execute(
                            sa.insert(t).values(id=task_id, owner=tasks[task_id][0], **values)
                        )

        await self._run(upsert)

    def _scope(self, context: ServerCallContext) -> list[sa.ColumnElement[bool]]:
        return [] if sees_all(context) else [self.table.c.owner == owner_of(context)]

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        cached = self._cache.get(task_id) if self.cache_enabled else None
        if cached is not None:
            if not (sees_all(context) or cached[0] == owner_of(context)):
                return None
            cached_task: Task = Task.FromString(cached[1])
            return cached_task
        t = self.table
        stmt = sa.select(t.c.task, t.c.owner).where(t.c.id == task_id)
        row = await self._run(lambda c: c.execute(stmt).one_or_none())
        if row is None:
            return None
        task: Task = Parse(row[0], Task(), ignore_unknown_fields=True)
        if self.cache_enabled:
            self._remember(task_id, row[1], task.SerializeToString())
        if not (sees_all(context) or row[1] == owner_of(context)):
            return None
        return task

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        await self.flush()
        t = self.table
        where = self._scope(context)
        if params.context_id:
            where.append(t.c.context_id == params.context_id)
        if params.status:
            where.append(t.c.state == str(params.status))
        if params.HasField("status_timestamp_after"):
            where.append(t.c.updated_ns >= params.status_timestamp_after.ToNanoseconds())
        page_where = list(where)
        if params.page_token:
            cursor = decode_list_tasks_cursor(params.page_token)
            if cursor is None:
                raise InvalidParamsError(message="invalid page token")
            page_where.append(self._after(cursor))
        page_size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        has_ts = sa.case((t.c.updated_ns.is_(None), 0), else_=1)
        stmt = (
            sa.select(t.c.task, t.c.updated_ns, t.c.id)
            .where(*page_where)
            .order_by(has_ts.desc(), t.c.updated_ns.desc(), t.c.id.desc())
            .limit(page_size + 1)
        )
        count = sa.select(sa.func.count()).select_from(t).where(*where)

        def query(conn: sa.Connection) -> tuple[list[Any], int]:
            return list(conn.execute(stmt).all()), int(conn.execute(count).scalar_one())

        rows, total = await self._run(query)
        page = rows[:page_size]
        token = None
        if len(rows) > page_size:
            last = page[-1]
            token = encode_list_tasks_cursor(ListTasksCursor(timestamp_ns=last[1], task_id=last[2]))
        return ListTasksResponse(
            tasks=[Parse(r[0], Task(), ignore_unknown_fields=True) for r in page],
            next_page_token=token or "",
            page_size=page_size,
            total_size=total,
        )

    def _after(self, cursor: ListTasksCursor) -> sa.ColumnElement[bool]:
        t = self.table
        if cursor.timestamp_ns is None:
            return sa.and_(t.c.updated_ns.is_(None), t.c.id < cursor.task_id)
        return sa.or_(
            t.c.updated_ns < cursor.timestamp_ns,
            sa.and_(t.c.updated_ns == cursor.timestamp_ns, t.c.id < cursor.task_id),
            t.c.updated_ns.is_(None),
        )

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self.flush()
        if await self.get(task_id, context) is None:
            return
        self._cache.pop(task_id, None)
        t = self.table
        stmt = sa.delete(t).where(t.c.id == task_id)

        def delete(conn: sa.Connection) -> None:
            with conn.begin():
                conn.execute(stmt)

        await self._run(delete)


class SqlPushConfigStore(_SqlStore, PushNotificationConfigStore):
    """Push-notification configs in the engine's database (table ``apflow_a2a_push_configs``)."""

    def __init__(
        self,
        storage: TaskStorage,
        *,
        cache: bool | None = None,
        cache_size: int = 10_000,
    ) -> None:
        super().__init__(storage, _push_table(sa.MetaData(), A2A_PUSH_TABLE))
        self.cache_enabled = storage.url.startswith("duckdb") if cache is None else cache
        #: task id -> its configs, for dispatch (asked for on every event of every task)
        self._dispatch: OrderedDict[str, list[TaskPushNotificationConfig]] = OrderedDict()
        self._cache_size = cache_size

    async def set_info(
        self,
        task_id: str,
        notification_config: TaskPushNotificationConfig,
        context: ServerCallContext,
    ) -> TaskPushNotificationConfig:
        t = self.table
        stored = normalize_push_notification_config(task_id, notification_config)
        owner = owner_of(context)
        text = MessageToJson(stored, indent=None)
        key = (t.c.task_id == task_id, t.c.owner == owner, t.c.config_id == stored.id)

        def upsert(conn: sa.Connection) -> None:
            with conn.begin():
                done = conn.execute(sa.update(t).where(*key).values(config=text))
                if not done.rowcount:
                    conn.execute(
                        sa.insert(t).values(
                            task_id=task_id, owner=owner, config_id=stored.id, config=text
                        )
                    )

        await self._run(upsert)
        self._dispatch.pop(task_id, None)
        result = TaskPushNotificationConfig()
        result.CopyFrom(stored)
        return result

    async def _select(self, *where: sa.ColumnElement[bool]) -> list[TaskPushNotificationConfig]:
        t = self.table
        stmt = sa.select(t.c.config).where(*where).order_by(t.c.config_id)
        texts = await self._run(lambda c: c.execute(stmt).scalars().all())
        return [Parse(x, TaskPushNotificationConfig(), ignore_unknown_fields=True) for x in texts]

    async def get_info(
        self, task_id: str, context: ServerCallContext
    ) -> list[TaskPushNotificationConfig]:
        t = self.table
        return await self._select(t.c.task_id == task_id, t.c.owner == owner_of(context))

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        if self.cache_enabled and task_id in self._dispatch:
            self._dispatch.move_to_end(task_id)
            return list(self._dispatch[task_id])
        configs = await self._select(self.table.c.task_id == task_id)
        if self.cache_enabled:
            self._dispatch[task_id] = configs
            while len(self._dispatch) > self._cache_size:
                self._dispatch.popitem(last=False)
        return list(configs)

    async def delete_info(
        self, task_id: str, context: ServerCallContext, config_id: str | None = None
    ) -> None:
        t = self.table
        where = [t.c.task_id == task_id, t.c.owner == owner_of(context)]
        if config_id is not None:
            where.append(t.c.config_id == config_id)
        stmt = sa.delete(t).where(*where)

        def delete(conn: sa.Connection) -> None:
            with conn.begin():
                conn.execute(stmt)

        await self._run(delete)
        self._dispatch.pop(task_id, None)
