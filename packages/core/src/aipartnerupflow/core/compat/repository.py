"""The original ``TaskRepository`` methods that our repository has no own name for.

Each is a thin wrapper over :meth:`TaskRepository.update_task` or a storage query, so the
checks of our API apply (a running or completed task cannot be edited; the tree is validated
after the change). Where the original swallowed errors and returned False, these raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import TaskNotFoundError, ValidationError
from aipartnerupflow.core.status import TaskStatus

if TYPE_CHECKING:
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.storage.base import TaskStorage
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["LegacyRepositoryMethods"]


class LegacyRepositoryMethods:
    """Mixed into :class:`~aipartnerupflow.core.repository.TaskRepository`."""

    storage: TaskStorage

    if TYPE_CHECKING:

        async def update_task(self, task_id: str, **fields: Any) -> bool: ...

    async def update_task_inputs(self, task_id: str, inputs: dict[str, Any]) -> bool:
        """Replace a task's inputs (``update_task(task_id, inputs=...)``)."""
        return await self.update_task(task_id, inputs=inputs)

    async def update_task_name(self, task_id: str, name: str) -> bool:
        """Rename a task."""
        return await self.update_task(task_id, name=name)

    async def update_task_priority(self, task_id: str, priority: int) -> bool:
        """Change a task's priority (0 urgent ... 3 low)."""
        return await self.update_task(task_id, priority=priority)

    async def update_task_params(self, task_id: str, params: dict[str, Any]) -> bool:
        """Replace a task's params (the executor's constructor arguments)."""
        return await self.update_task(task_id, params=params)

    async def update_task_schemas(self, task_id: str, schemas: dict[str, Any]) -> bool:
        """Replace a task's schemas (``method`` picks the executor)."""
        return await self.update_task(task_id, schemas=schemas)

    async def update_task_dependencies(self, task_id: str, dependencies: list[Any]) -> bool:
        """Replace a task's dependencies; entries may be ids, ``{"id"}`` or ``{"name"}``
        objects (a name is resolved within the task's tree)."""
        from aipartnerupflow.core.compat.task_json import normalize_dependency

        task = await self.storage.get_task(task_id)
        if task is None:
            return False
        tree = await self.storage.get_tree(task.root_id or task.id)
        ids = {t.id for t in tree}
        by_name: dict[str, list[str]] = {}
        for t in tree:
            by_name.setdefault(t.name, []).append(t.id)
        plain: list[dict[str, Any]] = []
        for dep in dependencies:
            value, problem = normalize_dependency(dep)
            if problem:
                raise ValidationError(f"update_task_dependencies({task_id!r}): {problem}")
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                ref = value["id"]
                named = by_name.get(ref, [])
                if ref not in ids and len(named) == 1:
                    value = {**value, "id": named[0]}
            plain.append(value)
        return await self.update_task(task_id, dependencies=plain)

    async def get_completed_tasks_by_ids(self, task_ids: list[str]) -> dict[str, TaskModel]:
        """The completed tasks among ``task_ids``, by id."""
        rows = await self.storage.get_tasks(task_ids)
        return {t.id: t for t in rows if t.status == TaskStatus.COMPLETED}

    async def get_all_children_recursive(self, task_id: str) -> list[TaskModel]:
        """Every task below ``task_id`` (by ``parent_id``), not the task itself."""
        from aipartnerupflow.core.tree import subtree_ids

        task = await self.storage.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        tree = await self.storage.get_tree(task.root_id or task.id)
        below = subtree_ids(tree, task_id) - {task_id}
        return [t for t in tree if t.id in below]

    async def find_dependent_tasks(self, task_id: str) -> list[TaskModel]:
        """The tasks that depend on ``task_id`` directly or transitively (same tree)."""
        task = await self.storage.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        tree = await self.storage.get_tree(task.root_id or task.id)
        found: set[str] = set()
        stack = [task_id]
        while stack:
            current = stack.pop()
            for t in tree:
                if current in t.dependency_ids() and t.id not in found:
                    found.add(t.id)
                    stack.append(t.id)
        return [t for t in tree if t.id in found]

    async def save_task_hierarchy_to_database(self, task_tree: TaskTreeNode) -> bool:
        """Store the tasks of a ``TaskTreeNode`` that are not stored yet (one transaction)."""
        for parent in task_tree.walk():
            for node in parent.children:
                node.task.parent_id = parent.task.id
        from aipartnerupflow.core.errors import TaskTreeValidationError
        from aipartnerupflow.core.validation import structure_problems

        tasks = task_tree.tasks()
        root, problems = structure_problems(tasks)
        if root is None or problems:
            raise TaskTreeValidationError(problems)
        stored = {t.id for t in await self.storage.get_tasks([t.id for t in tasks])}
        missing = [t for t in tasks if t.id not in stored]
        if missing:
            await self.storage.insert_tasks(missing)
        return True
