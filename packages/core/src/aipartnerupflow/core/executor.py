"""The executor interface: what every task executor implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from aipartnerupflow.core.context import TaskContext, current_task_context

__all__ = ["ExecutableTask"]


class ExecutableTask(ABC):
    """An executor: runs one task's work.

    A task selects its executor with ``schemas.method`` (the executor's ``id``). The engine
    builds the executor with the task's ``params`` as keyword arguments, validates the inputs
    against :meth:`get_input_schema`, then awaits :meth:`execute`. Whatever ``execute`` returns
    (JSON-serialisable) becomes the task's result; raising fails the task. Returning a dict with
    ``"status": "failed"`` or ``"success": False`` also fails it, with its ``error`` or
    ``message`` as the reason.

    Constructors must be cheap and must not do I/O; import heavy SDKs inside ``execute``.
    """

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tags: ClassVar[list[str]] = []
    examples: ClassVar[list[dict[str, Any]]] = []

    @abstractmethod
    async def execute(self, inputs: dict[str, Any]) -> Any:
        """Do the work and return a JSON-serialisable result."""

    def get_input_schema(self) -> dict[str, Any]:
        """JSON Schema of the inputs ``execute`` accepts (default: any object)."""
        return {"type": "object"}

    async def cancel(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Stop work in flight; called before the engine cancels ``execute``."""

    @property
    def context(self) -> TaskContext | None:
        """The running task's context (id, user, attempt, progress reporting)."""
        return current_task_context()
