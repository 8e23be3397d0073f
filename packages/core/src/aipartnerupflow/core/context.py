"""The context of the task an executor is running, reachable from inside ``execute()``."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.executors.secrets import SecretScrubber

__all__ = ["TaskContext", "current_task_context"]


@dataclass(slots=True)
class TaskContext:
    """What the engine tells an executor about the task it runs."""

    task_id: str
    root_id: str
    name: str
    user_id: str | None
    attempt: int
    #: The number of this task's earlier attempt that a process left without a stored end (it
    #: was killed, or lost its database, while that attempt ran); None when the attempt before
    #: ended or this is the first. An executor whose work lives elsewhere (a remote run, a
    #: container) can use it to re-attach to that attempt's work instead of starting it again.
    interrupted_attempt: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    dependency_results: dict[str, Any] = field(default_factory=dict)
    _progress: Callable[[float, str | None], None] | None = None
    #: Secret values of this attempt; masked in its result, error, events and log records.
    secrets: SecretScrubber = field(default_factory=SecretScrubber)

    def add_secret(self, *values: Any) -> None:
        """Register secret values (tokens, passwords) so they never leave the executor."""
        self.secrets.add(*values)

    def report_progress(self, progress: float, message: str | None = None) -> None:
        """Publish progress (0.0-1.0) for this task on the run's event stream (registered
        secrets masked in ``message``)."""
        if self._progress is not None:
            if message is not None and self.secrets:
                message = self.secrets.text(str(message))
            self._progress(min(1.0, max(0.0, float(progress))), message)


_current: ContextVar[TaskContext | None] = ContextVar("aipartnerupflow_task", default=None)


def current_task_context() -> TaskContext | None:
    """The context of the task running in this asyncio task, or None outside the engine."""
    return _current.get()


def _set_current(ctx: TaskContext | None) -> None:
    _current.set(ctx)
