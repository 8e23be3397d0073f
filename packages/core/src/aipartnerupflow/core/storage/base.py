"""``TaskStorage``: the storage interface every store (DuckDB, PostgreSQL, ...) implements."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aipartnerupflow.core.errors import StorageError
from aipartnerupflow.core.models import TaskModel

if TYPE_CHECKING:
    import sqlalchemy as sa

R = TypeVar("R")

__all__ = ["TaskQuery", "TaskStorage"]


@dataclass(slots=True)
class TaskQuery:
    """Filters for listing and counting tasks. ``parent_id=""`` means root tasks only;
    ``search`` matches a name containing it (any case) or an id starting with it."""

    user_id: str | None = None
    status: str | Sequence[str] | None = None
    root_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    search: str | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = True


class TaskStorage(ABC):
    """Where tasks live. All methods are safe to call from the event loop.

    State changes made while running are queued with :meth:`write_behind` and committed in
    batches (group commit); :meth:`flush` waits until everything queued is durable.
    """

    url: str

    @abstractmethod
    async def initialize(self) -> None:
        """Open the store and apply pending migrations (done automatically on first use)."""

    @abstractmethod
    async def close(self) -> None:
        """Flush queued writes and release the database."""

    @abstractmethod
    async def insert_tasks(self, tasks: Sequence[TaskModel]) -> None:
        """Insert tasks in one transaction; nothing is written if any id already exists."""

    async def add_task(self, task: TaskModel, fresh_id: bool = False) -> bool:
        """Insert one task (``create_task``): its ``root_id`` comes from its parent, and the
        parent gets ``has_children``. False when ``task.parent_id`` names no stored task
        (nothing is written); a taken id raises like :meth:`insert_tasks`. Durable on return.
        ``fresh_id`` says the id was just generated, so a store may skip looking it up.

        Stores may do it in one round trip; this default uses the other methods.
        """
        parent: TaskModel | None = None
        if task.parent_id:
            parent = await self.get_task(task.parent_id)
            if parent is None:
                return False
            task.root_id = parent.root_id or parent.id
        await self.insert_tasks([task])
        if parent is not None and not parent.has_children:
            await self.update_task(parent.id, {"has_children": True})
        return True

    @abstractmethod
    async def get_task(self, task_id: str) -> TaskModel | None:
        """One task, or None."""

    @abstractmethod
    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskModel]:
        """The tasks with these ids that exist (one query)."""

    @abstractmethod
    async def get_tree(self, root_id: str) -> list[TaskModel]:
        """Every task of the tree under ``root_id``, root first (one query)."""

    @abstractmethod
    async def get_children(self, parent_id: str) -> list[TaskModel]:
        """Direct children, by priority then submission order."""

    @abstractmethod
    async def list_tasks(self, query: TaskQuery) -> list[TaskModel]:
        """Tasks matching the filters, paginated."""

    @abstractmethod
    async def count_tasks(self, query: TaskQuery) -> dict[str, int]:
        """Counts per status of the tasks matching the filters (limit/offset ignored)."""

    @abstractmethod
    async def update_task(self, task_id: str, fields: dict[str, Any]) -> bool:
        """Update fields now (after queued writes); False when the task does not exist."""

    @abstractmethod
    def write_behind(self, task_id: str, fields: dict[str, Any]) -> None:
        """Queue a state change; later changes to the same task win within a batch."""

    def write_ahead(self, changes: dict[str, dict[str, Any]]) -> Awaitable[dict[str, str]]:
        """Queue changes that must be durable before the caller goes on (attempt starts).

        Changes queued together are committed together, with the write-behind changes queued
        before them. The awaitable gives the ids of rows that could not be stored, with the
        reason (empty when all were).
        """
        for task_id, fields in changes.items():
            self.write_behind(task_id, fields)

        async def durable() -> dict[str, str]:
            await self.flush()
            return {}

        return asyncio.ensure_future(durable())

    @abstractmethod
    async def flush(self) -> None:
        """Wait until every queued change is committed; raises if a batch failed."""

    @abstractmethod
    async def delete_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete tasks; returns how many were removed."""

    @abstractmethod
    async def interrupted_roots(self, live_owners: Sequence[str]) -> list[str]:
        """Roots of in-process trees whose run began but did not end: an unfinished task, a
        task that started (``started_at`` set), and no task ``in_progress`` under an owner in
        ``live_owners``."""

    async def run_sql(self, fn: Callable[[sa.Connection], R]) -> R:
        """Run ``fn(connection)`` with a SQLAlchemy connection where the store runs its own
        statements (after every queued write); plugins use it for their own tables, created
        by their migrations (:mod:`aipartnerupflow.core.storage.plugin_migrations`).

        Stores that are not SQL databases raise :class:`StorageError`.
        """
        raise StorageError(
            f"{type(self).__name__} is not a SQL store, so it cannot run SQL for plugins; use "
            "create_session() with a DuckDB or PostgreSQL URL"
        )
