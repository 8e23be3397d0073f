"""Several server replicas on one PostgreSQL database (``AIPARTNERUPFLOW_A2A_CLUSTER``).

a2a-sdk keeps a running task's events in the memory of the replica running it. Its cluster
interfaces (:class:`VersionedTaskStore`, :class:`TaskEventStream`) are implemented here over the
A2A tables: every write of an A2A task compares and bumps its ``version`` and appends the event
it applied to ``apflow_a2a_events`` in the same transaction. Another replica streams the task
by sending the stored Task (at version *v*) and then the logged events after *v* — each event
once, in order, none missing. A cancel through any replica writes CANCELED with the same
check; the replica running the task finds the newer version on its next write and stops.

The trees themselves run on the core's PostgreSQL queue: every replica runs a
:class:`~aipartnerupflow.core.worker.Worker`, so a tree started through one replica may run on
any, a cancel reaches the worker running each task, and the leases of a killed replica expire
and are reclaimed by the others (the core's mechanism, not a second one). What the killed
replica no longer records — the end of its A2A tasks — is written by whichever replica reads or
streams such a task once its tree has ended (:func:`adopt_finished`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import sqlalchemy as sa
from a2a.server.cluster import (
    ConcurrentTaskModificationError,
    StoredTask,
    TaskEventStream,
    TaskVersion,
    VersionedEvent,
    VersionedTaskStore,
)
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.types import ListTasksRequest, ListTasksResponse, StreamResponse, Task, TaskState
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToJson, Parse

from aipartnerupflow.api.store import (
    SqlTaskStore,
    guarded,
    owner_of,
    run_sql,
    sees_all,
    strip_engine_event,
)
from aipartnerupflow.core.errors import ConfigurationError

__all__ = [
    "A2A_EVENT_TABLE",
    "ClusterEventStream",
    "ClusterTaskStore",
    "check_cluster_storage",
]

log = logging.getLogger("aipartnerupflow.api.cluster")

A2A_EVENT_TABLE = "apflow_a2a_events"
#: States after which a task takes no more events (a cancel is refused on them).
TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)


def check_cluster_storage(url: str) -> None:
    """Cluster mode needs PostgreSQL (the shared queue, row locks, the event log)."""
    if not url.startswith("postgresql"):
        raise ConfigurationError(
            "AIPARTNERUPFLOW_A2A_CLUSTER=true needs a PostgreSQL database shared by every "
            "replica (AIPARTNERUPFLOW_DATABASE_URL=postgresql://user:password@host:5432/db); "
            "a DuckDB file belongs to one process"
        )


def _events_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        A2A_EVENT_TABLE,
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
    )


def _number(version: TaskVersion) -> int:
    value = version._value
    if not isinstance(value, int):
        raise TypeError(f"cluster task versions are integers, not {type(value).__name__}")
    return value


class ClusterTaskStore(VersionedTaskStore):
    """The SDK's versioned task store over ``apflow_a2a_tasks`` and ``apflow_a2a_events``.

    Reads, lists and deletes are those of :class:`SqlTaskStore` (owner-scoped, same table).
    """

    def __init__(self, inner: SqlTaskStore) -> None:
        if inner.cache_enabled:
            raise ConfigurationError("the cluster task store cannot use the write-behind cache")
        self.inner = inner
        self.table = inner.table
        self.events = _events_table(sa.MetaData())

    async def save(
        self,
        task: Task,
        *,
        event: Event | None,
        prev: Task | None,
        prev_version: TaskVersion,
        context: ServerCallContext,
    ) -> TaskVersion:
        del prev
        strip_engine_event(task)
        t, e = self.table, self.events
        owner = owner_of(context)
        values = {
            "context_id": task.context_id,
            "state": str(task.status.state),
            "updated_ns": int(task.status.timestamp.ToNanoseconds())
            if task.status.HasField("timestamp")
            else None,
            "task": MessageToJson(task, indent=None),
        }
        logged = MessageToJson(to_stream_response(event), indent=None) if event else None
        cancel = task.status.state == TaskState.TASK_STATE_CANCELED
        expected = None if prev_version.is_missing else _number(prev_version)

        def write(conn: sa.Connection) -> int | None:
            with conn.begin():
                row = conn.execute(
                    sa.select(t.c.version, t.c.state).where(t.c.id == task.id).with_for_update()
                ).one_or_none()
                stored = None if row is None else int(row[0] or 0)
                if cancel:
                    if row is None or int(row[1]) in TERMINAL:
                        return None
                elif stored != expected and not (expected is None and row is None):
                    return None
                version = (stored or 0) + 1
                if row is None:
                    conn.execute(
                        sa.insert(t).values(id=task.id, owner=owner, version=version, **values)
                    )
                else:
                    conn.execute(
                        sa.update(t).where(t.c.id == task.id).values(version=version, **values)
                    )
                if logged is not None:
                    conn.execute(
                        sa.insert(e).values(task_id=task.id, version=version, event=logged)
                    )
                return version

        version = await self.inner._run(write)
        if version is None:
            raise ConcurrentTaskModificationError(task.id)
        return TaskVersion(version)

    async def get(self, task_id: str, context: ServerCallContext) -> StoredTask | None:
        t = self.table
        stmt = sa.select(t.c.task, t.c.owner, t.c.version).where(t.c.id == task_id)
        row = await self.inner._run(lambda c: c.execute(stmt).one_or_none())
        if row is None or not (sees_all(context) or row[1] == owner_of(context)):
            return None
        task: Task = Parse(row[0], Task(), ignore_unknown_fields=True)
        return StoredTask(task, TaskVersion(int(row[2] or 0)))

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self.inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        if await self.get(task_id, context) is None:
            return
        await self.inner.delete(task_id, context)
        stmt = sa.delete(self.events).where(self.events.c.task_id == task_id)

        def forget(conn: sa.Connection) -> None:
            with conn.begin():
                conn.execute(stmt)

        await self.inner._run(forget)


class ClusterEventStream(TaskEventStream):
    """Tails ``apflow_a2a_events``: the events :class:`ClusterTaskStore` logged, in order.

    ``publish`` does nothing (the store logged the event with the write that applied it).
    A subscriber polls every ``poll_seconds`` while nothing new is logged.
    """

    def __init__(self, store: ClusterTaskStore, *, poll_seconds: float = 0.2) -> None:
        self.store = store
        self.poll_seconds = poll_seconds

    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        del task_id, event

    async def subscribe(
        self, task_id: str, *, after: TaskVersion
    ) -> AsyncGenerator[VersionedEvent, None]:
        e = self.store.events
        version = 0 if after.is_missing else _number(after)
        storage = self.store.inner.storage
        while True:
            stmt = (
                sa.select(e.c.version, e.c.event)
                .where(e.c.task_id == task_id, e.c.version > version)
                .order_by(e.c.seq)
            )
            rows = await guarded(run_sql(storage, partial(_all_rows, stmt)))
            for row in rows:
                version = int(row[0])
                response = Parse(row[1], StreamResponse(), ignore_unknown_fields=True)
                yield VersionedEvent(event=_payload(response), version=TaskVersion(version))
            if not rows:
                await asyncio.sleep(self.poll_seconds)

    async def destroy(self, task_id: str) -> None:
        del task_id  # the log is kept: a late subscriber still replays from its version


def _all_rows(stmt: sa.Select[Any], conn: sa.Connection) -> list[Any]:
    return list(conn.execute(stmt))


def _payload(response: StreamResponse) -> Event:
    kind = response.WhichOneof("payload")
    if kind is None:
        raise ValueError("a logged A2A event has no payload")
    payload: Event = getattr(response, kind)
    return payload
