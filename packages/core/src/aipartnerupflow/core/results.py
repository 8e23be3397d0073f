"""What a run returns: the tree's final status and every task's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.models import TaskModel

if TYPE_CHECKING:
    from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["RootTask", "TaskOutcome", "TreeResult"]


@dataclass(slots=True, frozen=True)
class TaskOutcome:
    """The end state of one task."""

    id: str
    name: str
    status: str
    result: Any = None
    error: str | None = None
    attempts: int = 0
    progress: float = 0.0

    @classmethod
    def of(cls, task: TaskModel) -> TaskOutcome:
        """The outcome recorded in a task row."""
        return cls(
            task.id, task.name, task.status, task.result, task.error, task.attempts, task.progress
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "name", "status", "result", "error"}``."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "result": self.result,
            "error": self.error,
        }


@dataclass(slots=True, frozen=True)
class TreeResult:
    """The outcome of a tree run. ``status`` is ``completed`` only if every task completed.

    It can also be walked as the original's result, a root ``TaskTreeNode``: ``result.task``
    is the root task (``result.task.status``...) and, called, a task's outcome
    (``result.task("name")``); ``result.children`` are the root's child nodes.
    """

    root_id: str
    status: str
    tasks: list[TaskOutcome] = field(default_factory=list)
    #: The task rows the result was read from (empty when built from outcomes alone).
    rows: tuple[TaskModel, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def of(cls, root_id: str, tasks: Sequence[TaskModel]) -> TreeResult:
        """The result recorded in a tree's rows: root first, completed only if all completed."""
        from aipartnerupflow.core.tree import aggregate_status

        outcomes = sorted((TaskOutcome.of(t) for t in tasks), key=lambda o: o.id != root_id)
        return cls(root_id, aggregate_status([o.status for o in outcomes]), outcomes, tuple(tasks))

    @property
    def root(self) -> TaskOutcome:
        """The root task's outcome."""
        return self.outcome(self.root_id)

    def outcome(self, key: str) -> TaskOutcome:
        """A task's outcome by id, else by name."""
        for outcome in self.tasks:
            if outcome.id == key:
                return outcome
        for outcome in self.tasks:
            if outcome.name == key:
                return outcome
        raise KeyError(f"no task {key!r} in the tree {self.root_id}")

    @property
    def task(self) -> RootTask:
        """Called with an id or name: that task's outcome. As an object: the root task."""
        return RootTask(self)

    @property
    def tree(self) -> TaskTreeNode:
        """The tree as ``TaskTreeNode`` objects (the original's return value)."""
        from aipartnerupflow.core.tree import TaskTreeNode

        if not self.rows:
            from aipartnerupflow.core.errors import AipartnerupflowError

            raise AipartnerupflowError(
                f"this result of the tree {self.root_id} carries no task rows; load the tree "
                f"with task_repository.build_task_tree({self.root_id!r})"
            )
        return TaskTreeNode.from_tasks(list(self.rows))

    @property
    def children(self) -> list[TaskTreeNode]:
        """The root's child nodes, as on the original's root ``TaskTreeNode``."""
        return self.tree.children

    def calculate_status(self) -> str:
        """The tree's status (as ``TaskTreeNode.calculate_status``)."""
        return self.status

    def calculate_progress(self) -> float:
        """Mean progress of the tree's tasks."""
        return sum(o.progress for o in self.tasks) / len(self.tasks) if self.tasks else 0.0

    @property
    def ok(self) -> bool:
        """True when the tree completed."""
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        """``{"root_id", "status", "tasks": [...]}`` as the CLI's ``--json`` prints it."""
        return {
            "root_id": self.root_id,
            "status": self.status,
            "tasks": [t.to_dict() for t in self.tasks],
        }


class RootTask:
    """``TreeResult.task``: callable for an outcome, otherwise the root task's fields."""

    __slots__ = ("_result",)

    def __init__(self, result: TreeResult) -> None:
        self._result = result

    def __call__(self, key: str) -> TaskOutcome:
        return self._result.outcome(key)

    def _root(self) -> TaskModel | TaskOutcome:
        for row in self._result.rows:
            if row.id == self._result.root_id:
                return row
        return self._result.root

    def __getattr__(self, name: str) -> Any:
        return getattr(self._root(), name)

    def __repr__(self) -> str:
        return f"RootTask({self._root()!r})"
