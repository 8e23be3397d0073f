"""``TaskTreeNode``: a task and its children, as in the original project."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.status import TaskStatus

__all__ = ["TaskTreeNode", "aggregate_status", "subtree_ids"]


class TaskTreeNode:
    """A node of a task tree. ``parent_id`` is organisational; dependencies order execution."""

    __slots__ = ("children", "task")

    def __init__(self, task: TaskModel) -> None:
        self.task = task
        self.children: list[TaskTreeNode] = []

    def add_child(self, child: TaskTreeNode) -> TaskTreeNode:
        """Append a child node and return it."""
        self.children.append(child)
        return child

    def walk(self) -> Iterator[TaskTreeNode]:
        """This node and every descendant, depth first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def tasks(self) -> list[TaskModel]:
        """Every task of the subtree, depth first."""
        return [node.task for node in self.walk()]

    def calculate_progress(self) -> float:
        """Mean progress of the subtree's tasks."""
        tasks = self.tasks()
        return sum(t.progress for t in tasks) / len(tasks)

    def calculate_status(self) -> str:
        """Status of the whole subtree: completed only when every task completed."""
        return aggregate_status([t.status for t in self.tasks()])

    @classmethod
    def from_tasks(cls, tasks: list[TaskModel]) -> TaskTreeNode:
        """Build the tree from a flat list holding exactly one root."""
        nodes = {t.id: cls(t) for t in tasks}
        root: TaskTreeNode | None = None
        for task in tasks:
            parent = nodes.get(task.parent_id) if task.parent_id else None
            if parent is None:
                if root is None:
                    root = nodes[task.id]
                continue
            parent.children.append(nodes[task.id])
        if root is None:
            raise ValueError("no root task in the list")
        return root

    def __repr__(self) -> str:
        return (
            f"TaskTreeNode({self.task.name!r}, id={self.task.id!r}, children={len(self.children)})"
        )


def subtree_ids(tasks: Sequence[TaskModel], top: str) -> set[str]:
    """``top`` and the ids of every task below it (by ``parent_id``)."""
    children: dict[str, list[str]] = {}
    for t in tasks:
        if t.parent_id:
            children.setdefault(t.parent_id, []).append(t.id)
    found = {top}
    stack = [top]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def aggregate_status(statuses: list[str]) -> str:
    """One status for many tasks: failed > cancelled > in_progress > pending > completed."""
    seen = set(statuses)
    for status in (TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.IN_PROGRESS):
        if status in seen:
            return status.value
    if seen <= {TaskStatus.COMPLETED}:
        return TaskStatus.COMPLETED.value
    if TaskStatus.COMPLETED in seen:
        return TaskStatus.IN_PROGRESS.value
    return TaskStatus.PENDING.value
