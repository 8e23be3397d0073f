"""``TaskRepository``: task queries and single-task writes, with the original project's names.

Every method issues a bounded number of SQL statements, whatever the size of the tree.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from aipartnerupflow.core.compat.repository import LegacyRepositoryMethods
from aipartnerupflow.core.errors import TaskNotFoundError, ValidationError
from aipartnerupflow.core.models import TASK_COLUMNS, TaskModel, new_task_id
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage.base import TaskQuery, TaskStorage
from aipartnerupflow.core.tree import TaskTreeNode, subtree_ids

__all__ = ["TaskRepository"]

_UNSET: Any = object()
_positions = itertools.count()


class TaskRepository(LegacyRepositoryMethods):
    """Reads and writes tasks in a :class:`TaskStorage` (the original's single-field setters
    come from :class:`~aipartnerupflow.core.compat.repository.LegacyRepositoryMethods`)."""

    def __init__(self, storage: TaskStorage, registry: ExecutorRegistry | None = None) -> None:
        self.storage = storage
        self.registry = registry

    async def create_task(
        self,
        name: str,
        user_id: str | None = None,
        parent_id: str | None = None,
        priority: int = 2,
        dependencies: list[Any] | None = None,
        inputs: dict[str, Any] | None = None,
        schemas: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        id: str | None = None,
        **options: Any,
    ) -> TaskModel:
        """Validate and store one task (``retry`` and ``timeout_seconds`` may be given too).

        The original's ``status``/``progress``/``result``/``error``/``has_children``/
        ``has_copy``/``original_task_id`` arguments are accepted where a new task can honour
        them (:func:`~aipartnerupflow.core.compat.task_json.legacy_create_options`).
        """
        import pydantic

        from aipartnerupflow.core.compat.task_json import legacy_create_options
        from aipartnerupflow.core.spec import TaskSpec

        options, original_task_id = legacy_create_options(name, options)

        try:
            spec = TaskSpec(
                id=id,
                name=name,
                user_id=user_id,
                parent_id=parent_id,
                priority=priority,
                dependencies=_plain_dependencies(name, dependencies),
                inputs=inputs or {},
                schemas=schemas or {},
                params=params or {},
                **options,
            )
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "task"
            msg = "unknown argument" if first["type"] == "extra_forbidden" else first["msg"]
            raise ValidationError(f"create_task({name!r}): {where}: {msg}") from None
        from aipartnerupflow.core.limits import json_problems

        problems = json_problems(
            {"name": name, "inputs": spec.inputs, "params": spec.params, "schemas": spec.schemas},
            f"create_task({name!r})",
        )
        if problems:
            raise ValidationError("; ".join(problems))
        task = TaskModel(
            id=spec.id or new_task_id(),
            name=spec.name,
            parent_id=spec.parent_id,
            user_id=spec.user_id,
            priority=spec.priority,
            position=next(_positions),
            dependencies=[{"id": d.id, "required": d.required} for d in spec.dependencies],
            inputs=spec.inputs,
            params=spec.params,
            schemas=spec.schemas,
            retry=spec.retry.model_dump() if spec.retry else None,
            timeout_seconds=spec.timeout_seconds,
            original_task_id=original_task_id,
        )
        if not await self.storage.add_task(task, fresh_id=spec.id is None):
            raise TaskNotFoundError(
                f"create_task({name!r}): parent task {spec.parent_id!r} "
                "does not exist; create the parent first"
            )
        return task

    async def get_task_by_id(self, task_id: str) -> TaskModel | None:
        """One task, or None."""
        return await self.storage.get_task(task_id)

    async def get_child_tasks_by_parent_id(self, parent_id: str) -> list[TaskModel]:
        """Direct children, by priority then submission order."""
        return await self.storage.get_children(parent_id)

    async def get_root_task(self, task: TaskModel | str) -> TaskModel:
        """The root of the tree holding ``task``."""
        row = task if isinstance(task, TaskModel) else await self._require(task)
        if not row.root_id:
            return row
        return await self._require(row.root_id)

    async def get_all_tasks_in_tree(self, root: TaskModel | str) -> list[TaskModel]:
        """Every task of a tree (one query)."""
        root_id = root.id if isinstance(root, TaskModel) else root
        return await self.storage.get_tree(root_id)

    async def build_task_tree(self, root: TaskModel | str) -> TaskTreeNode:
        """The stored tree as ``TaskTreeNode`` objects (one query)."""
        root_id = root.id if isinstance(root, TaskModel) else root
        tasks = await self.storage.get_tree(root_id)
        if not tasks:
            raise TaskNotFoundError(f"no task with id {root_id!r}")
        by_id = {t.id: t for t in tasks}
        top = by_id.get(root_id)
        if top is None:
            raise TaskNotFoundError(f"no task with id {root_id!r}")
        nodes = {t.id: TaskTreeNode(t) for t in tasks}
        for t in tasks:
            if t.parent_id in nodes and t.id != root_id:
                nodes[t.parent_id].children.append(nodes[t.id])
        return nodes[root_id]

    async def query_tasks(
        self,
        user_id: str | None = None,
        status: str | list[str] | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        name: str | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[TaskModel]:
        """Tasks matching the filters; ``parent_id=""`` gives root tasks only."""
        return await self.storage.list_tasks(
            TaskQuery(
                user_id=user_id,
                status=status,
                root_id=root_id,
                parent_id=parent_id,
                name=name,
                limit=limit,
                offset=offset,
                newest_first=newest_first,
            )
        )

    async def count_tasks(
        self,
        user_id: str | None = None,
        status: str | list[str] | None = None,
        root_id: str | None = None,
        parent_id: str | None = None,
        name: str | None = None,
    ) -> dict[str, int]:
        """Counts per status (one ``COUNT ... GROUP BY`` query); ``total`` holds the sum."""
        counts = await self.storage.count_tasks(
            TaskQuery(
                user_id=user_id, status=status, root_id=root_id, parent_id=parent_id, name=name
            )
        )
        counts["total"] = sum(counts.values())
        return counts

    async def update_task_status(
        self,
        task_id: str,
        status: str,
        error: str | None = _UNSET,
        result: Any = _UNSET,
        progress: float | None = _UNSET,
        started_at: datetime | None = _UNSET,
        completed_at: datetime | None = _UNSET,
    ) -> bool:
        """Set a status (and optionally error/result/progress/started_at/completed_at; None
        clears them)."""
        valid = {s.value for s in TaskStatus}
        if status not in valid:
            allowed = ", ".join(sorted(valid))
            raise ValidationError(f"unknown status {status!r}; use one of {allowed}")
        fields: dict[str, Any] = {"status": status}
        for key, value in (
            ("error", error),
            ("result", result),
            ("progress", progress),
            ("started_at", started_at),
            ("completed_at", completed_at),
        ):
            if value is not _UNSET:
                fields[key] = value
        return await self.storage.update_task(task_id, fields)

    async def update_task(self, task_id: str, **fields: Any) -> bool:
        """Update stored fields of one task.

        Definition fields (name, priority, inputs, params, schemas, dependencies, retry,
        timeout_seconds) are checked as at creation, on the whole tree after the change, and
        cannot change on a running or completed task (unless ``status="pending"`` resets it);
        the tree structure (``parent_id``, ``root_id``...) cannot change. State fields
        (status, result, error, progress...) are stored as given. False when the task does
        not exist.
        """
        from aipartnerupflow.core.registry import get_executor_registry
        from aipartnerupflow.core.service.params import EDITABLE_FIELDS
        from aipartnerupflow.core.service.updates import (
            check_edit_allowed,
            check_structure_unchanged,
            validated_changes,
        )

        unknown = set(fields) - set(TASK_COLUMNS)
        if unknown:
            raise ValidationError(f"unknown task field(s): {', '.join(sorted(unknown))}")
        status = fields.get("status")
        if status is not None and status not in {s.value for s in TaskStatus}:
            allowed = ", ".join(s.value for s in TaskStatus)
            raise ValidationError(f"unknown status {status!r}; use one of {allowed}")
        task = await self.storage.get_task(task_id)
        if task is None:
            return False
        check_structure_unchanged(fields, task)
        definition = {k: v for k, v in fields.items() if k in EDITABLE_FIELDS}
        if definition:
            check_edit_allowed(task, status)
            checked = await validated_changes(
                self.storage, self.registry or get_executor_registry(), task, definition
            )
            fields = {**fields, **checked}
        return await self.storage.update_task(task_id, fields)

    async def delete_task(self, task_id: str, *, with_descendants: bool = True) -> int:
        """Delete a task (and, by default, the tasks below it); returns how many were removed."""
        task = await self._require(task_id)
        ids = [task.id]
        if with_descendants and task.has_children:
            tree = await self.storage.get_tree(task.root_id or task.id)
            ids = sorted(subtree_ids(tree, task.id))
        return await self.storage.delete_tasks(ids)

    async def copy_task_tree(self, root_id: str, *, user_id: str | None = None) -> TaskModel:
        """Copy a stored tree with fresh ids, all pending; returns the new root."""
        tasks = await self.storage.get_tree(root_id)
        if not tasks:
            raise TaskNotFoundError(f"no task with id {root_id!r}")
        mapping = {t.id: new_task_id() for t in tasks}
        copies: list[TaskModel] = []
        for t in tasks:
            copies.append(
                TaskModel(
                    id=mapping[t.id],
                    name=t.name,
                    parent_id=mapping.get(t.parent_id) if t.parent_id else None,
                    root_id=mapping[root_id] if t.id != root_id else None,
                    user_id=user_id or t.user_id,
                    priority=t.priority,
                    position=t.position,
                    dependencies=[
                        {**d, "id": mapping.get(d["id"], d["id"])} for d in t.dependencies
                    ],
                    inputs=t.inputs,
                    params=t.params,
                    schemas=t.schemas,
                    retry=t.retry,
                    timeout_seconds=t.timeout_seconds,
                    has_children=t.has_children,
                    original_task_id=t.id,
                )
            )
        await self.storage.insert_tasks(copies)
        await self.storage.update_task(root_id, {"has_copy": True})
        return next(c for c in copies if c.id == mapping[root_id])

    async def _require(self, task_id: str) -> TaskModel:
        task = await self.storage.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        return task


def _plain_dependencies(name: str, dependencies: list[Any] | None) -> list[Any]:
    """Dependencies in our shape; the original's ``{"name": ...}``/``type`` forms accepted."""
    from aipartnerupflow.core.compat.task_json import normalize_dependency

    out: list[Any] = []
    for dep in dependencies or []:
        value, problem = normalize_dependency(dep)
        if problem:
            raise ValidationError(f"create_task({name!r}): {problem}")
        out.append(value)
    return out
