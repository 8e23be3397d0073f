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
    ``execute`` must not block the event loop: run blocking SDK calls with
    ``asyncio.to_thread``. Raise :class:`~aipartnerupflow.core.errors.PermanentError` for a
    failure no retry can fix (never retried) and
    :class:`~aipartnerupflow.core.errors.RetryableError` for one a retry may fix; the engine
    owns retries (the task's ``retry``), so executors do not loop themselves.

    The class attributes below are the executor's metadata, read without building an instance
    (see :func:`aipartnerupflow.core.executors.executor_info`).
    """

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tags: ClassVar[list[str]] = []
    examples: ClassVar[list[dict[str, Any]]] = []
    #: JSON Schema of the inputs (default: any object). Keep it open to extra keys: the
    #: engine merges dependency results into the inputs under each dependency's id.
    input_schema: ClassVar[dict[str, Any] | None] = None
    #: JSON Schema of the constructor params (the task's ``params``), checked at creation.
    params_schema: ClassVar[dict[str, Any] | None] = None
    #: True when the executor reaches the host or the network on a task's say-so (commands,
    #: SSH, containers …): tasks may use it only once AIPARTNERUPFLOW_ENABLED_EXECUTORS lists it.
    dangerous: ClassVar[bool] = False
    #: At most this many tasks of this executor run at once in one engine (None: no limit).
    max_concurrency: ClassVar[int | None] = None
    #: Timeout (seconds) of a task that sets no ``timeout_seconds`` (None: none).
    default_timeout: ClassVar[float | None] = None

    @abstractmethod
    async def execute(self, inputs: dict[str, Any]) -> Any:
        """Do the work and return a JSON-serialisable result."""

    def get_input_schema(self) -> dict[str, Any]:
        """JSON Schema of the inputs ``execute`` accepts: the class's ``input_schema``."""
        return type(self).input_schema or {"type": "object"}

    async def cancel(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Stop work in flight; called before the engine cancels ``execute``."""

    @property
    def context(self) -> TaskContext | None:
        """The running task's context (id, user, attempt, progress reporting)."""
        return current_task_context()
