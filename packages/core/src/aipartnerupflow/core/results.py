"""What a run returns: the tree's final status and every task's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.models import TaskModel

__all__ = ["TaskOutcome", "TreeResult"]


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
    """The outcome of a tree run. ``status`` is ``completed`` only if every task completed."""

    root_id: str
    status: str
    tasks: list[TaskOutcome] = field(default_factory=list)

    @classmethod
    def of(cls, root_id: str, tasks: Sequence[TaskModel]) -> TreeResult:
        """The result recorded in a tree's rows: root first, completed only if all completed."""
        from aipartnerupflow.core.tree import aggregate_status

        outcomes = sorted((TaskOutcome.of(t) for t in tasks), key=lambda o: o.id != root_id)
        return cls(root_id, aggregate_status([o.status for o in outcomes]), outcomes)

    @property
    def root(self) -> TaskOutcome:
        """The root task's outcome."""
        return self.task(self.root_id)

    def task(self, key: str) -> TaskOutcome:
        """A task's outcome by id, else by name."""
        for outcome in self.tasks:
            if outcome.id == key:
                return outcome
        for outcome in self.tasks:
            if outcome.name == key:
                return outcome
        raise KeyError(f"no task {key!r} in the tree {self.root_id}")

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
