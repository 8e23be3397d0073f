"""``TaskCreator``: the original's way of creating a task tree from an array.

``await TaskCreator(db).create_task_tree_from_array(tasks)`` validates the whole array and
stores it in one transaction, returning the root :class:`TaskTreeNode`, as
:meth:`TaskManager.create_task_tree_from_array` does. Unlike the original, a bad array writes
nothing, and an id that is already stored is an error (the original silently gave the task a
fresh id); leave ``id`` out to get fresh ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import ValidationError

if TYPE_CHECKING:
    from aipartnerupflow.core.models import TaskModel
    from aipartnerupflow.core.registry import ExecutorRegistry
    from aipartnerupflow.core.storage.base import TaskStorage
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["TaskCreator"]


class TaskCreator:
    """Creates task trees in a store (``TaskCreator(create_session())``)."""

    def __init__(
        self, db: TaskStorage | None = None, *, registry: ExecutorRegistry | None = None
    ) -> None:
        from aipartnerupflow.core.registry import get_executor_registry
        from aipartnerupflow.core.storage import get_default_session

        self.db = db if db is not None else get_default_session()
        self.registry = registry or get_executor_registry()

    async def create_task_tree_from_array(
        self, tasks: list[dict[str, Any]] | dict[str, Any], *, user_id: str | None = None
    ) -> TaskTreeNode:
        """Validate a flat task array (one task object is taken as an array of one) and
        store it in one transaction; returns the root node."""
        from aipartnerupflow.core.manager import announce_created
        from aipartnerupflow.core.tree import TaskTreeNode
        from aipartnerupflow.core.validation import tasks_from_array, validate_tasks

        models = tasks_from_array(tasks, user_id=user_id)
        root = validate_tasks(models, self.registry)
        await self.db.insert_tasks(models)
        tree = TaskTreeNode.from_tasks(models)
        await announce_created(root, tree)
        return tree

    def tree_to_flat_list(self, root_node: TaskTreeNode) -> list[TaskModel]:
        """Every task of the tree, root first (depth first)."""
        return root_node.tasks()

    async def create_task_copy(self, original_task: TaskModel, **options: Any) -> TaskTreeNode:
        """Not kept: its copy modes re-ran a tree by copying rows. Raises with what to use."""
        raise ValidationError(
            "TaskCreator.create_task_copy is not kept: to run a tree again in place use "
            "TaskManager.execute_tree(root_id, rerun='failed') (failed tasks and what depends "
            "on them) or rerun='all'; to copy a stored tree (all pending, new ids) use "
            f"task_repository.copy_task_tree({original_task.root_id or original_task.id!r})"
        )
