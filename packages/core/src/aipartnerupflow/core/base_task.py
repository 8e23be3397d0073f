"""``BaseTask``: a convenient base for executors, as in the original project.

:class:`~aipartnerupflow.core.executor.ExecutableTask` is the interface the engine calls;
``BaseTask`` adds what most executors want on top: params kept in :attr:`params`, the input
schema as a dict or a pydantic model (``inputs_schema``), and progress reporting helpers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aipartnerupflow.core.executor import ExecutableTask

__all__ = ["BaseTask"]


class BaseTask(ExecutableTask):
    """Executor base class with an input schema, stored params and progress reporting.

    ``inputs_schema`` may be a JSON-Schema dict or a pydantic model class. Keyword arguments
    given at construction (the task's ``params``) are kept in :attr:`params`.
    """

    inputs_schema: ClassVar[dict[str, Any] | type | None] = None

    def __init__(
        self,
        inputs: dict[str, Any] | None = None,
        inputs_schema: dict[str, Any] | type | None = None,
        **params: Any,
    ) -> None:
        self.inputs: dict[str, Any] = dict(inputs or {})
        self._inputs_schema = inputs_schema if inputs_schema is not None else self.inputs_schema
        self.params: dict[str, Any] = params

    def set_inputs(self, inputs: dict[str, Any]) -> None:
        """Replace the stored inputs."""
        self.inputs = dict(inputs)

    @property
    def task_id(self) -> str | None:
        """Id of the task being run, when called from inside ``execute``."""
        ctx = self.context
        return ctx.task_id if ctx else None

    @property
    def user_id(self) -> str | None:
        """Owner of the task being run."""
        ctx = self.context
        return ctx.user_id if ctx else None

    def report_progress(self, progress: float, message: str | None = None) -> None:
        """Publish progress (0.0-1.0) on the run's event stream."""
        ctx = self.context
        if ctx is not None:
            ctx.report_progress(progress, message)

    def get_input_schema(self) -> dict[str, Any]:
        """JSON Schema from ``inputs_schema`` (dict or pydantic model)."""
        schema = self._inputs_schema
        if schema is None:
            return type(self).input_schema or {"type": "object"}
        if isinstance(schema, dict):
            return schema
        dump = getattr(schema, "model_json_schema", None)
        if callable(dump):
            result: dict[str, Any] = dump()
            return result
        raise TypeError(
            f"{type(self).__name__}.inputs_schema must be a JSON-Schema dict or a pydantic "
            f"model class, not {type(schema).__name__}"
        )
