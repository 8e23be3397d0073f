"""What an executor class declares, read without building an instance, and the opt-in gate.

:func:`executor_info` reads an executor class's metadata (input and params schemas, whether it
is dangerous, its concurrency limit, default timeout, tags, examples); the agent card,
``apflow executors list`` and the engine read it from here. :func:`gate_problem` is the opt-in
gate: a dangerous executor (one that reaches the host or the network on a task's say-so) is
refused until ``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.inputs import input_problem

__all__ = [
    "ENABLE_SETTING",
    "ExecutorInfo",
    "executor_info",
    "gate_problem",
    "params_problem",
]

#: The setting that enables dangerous executors.
ENABLE_SETTING = "AIPARTNERUPFLOW_ENABLED_EXECUTORS"

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    """An executor class's metadata."""

    id: str
    name: str
    description: str
    tags: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    input_schema: dict[str, Any] = field(default_factory=lambda: dict(_ANY_OBJECT))
    params_schema: dict[str, Any] | None = None
    dangerous: bool = False
    max_concurrency: int | None = None
    default_timeout: float | None = None
    #: Why ``input_schema`` is only the generic one, when the class could not say.
    schema_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for ``executors list --json`` and the agent card)."""
        out = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "examples": list(self.examples),
            "input_schema": self.input_schema,
            "params_schema": self.params_schema,
            "dangerous": self.dangerous,
            "max_concurrency": self.max_concurrency,
            "default_timeout": self.default_timeout,
        }
        if self.schema_note:
            out["schema_note"] = self.schema_note
        return out


def _input_schema(cls: type[ExecutableTask]) -> tuple[dict[str, Any], str | None]:
    declared = getattr(cls, "input_schema", None)
    if isinstance(declared, dict):
        return declared, None
    legacy = getattr(cls, "inputs_schema", None)  # BaseTask's class attribute
    if isinstance(legacy, dict):
        return legacy, None
    dump = getattr(legacy, "model_json_schema", None)
    if callable(dump):
        schema = dump()
        if isinstance(schema, dict):
            return schema, None
    if cls.get_input_schema is ExecutableTask.get_input_schema:
        return dict(_ANY_OBJECT), None
    # An older executor computes its schema per instance: try one without params.
    try:
        schema = cls().get_input_schema()
    except Exception as exc:
        return dict(_ANY_OBJECT), (
            f"{cls.__name__} declares no class-level input_schema and cannot be built "
            f"without params ({type(exc).__name__}: {exc})"
        )
    return (schema, None) if isinstance(schema, dict) else (dict(_ANY_OBJECT), None)


def executor_info(cls: type[ExecutableTask], executor_id: str | None = None) -> ExecutorInfo:
    """The metadata of ``cls`` (registered as ``executor_id``, default ``cls.id``)."""
    schema, note = _input_schema(cls)
    limit = getattr(cls, "max_concurrency", None)
    timeout = getattr(cls, "default_timeout", None)
    return ExecutorInfo(
        id=executor_id or cls.id,
        name=cls.name or executor_id or cls.id,
        description=cls.description,
        tags=list(cls.tags),
        examples=list(cls.examples),
        input_schema=schema,
        params_schema=getattr(cls, "params_schema", None),
        dangerous=bool(getattr(cls, "dangerous", False)),
        max_concurrency=int(limit) if isinstance(limit, int) and limit > 0 else None,
        default_timeout=float(timeout) if isinstance(timeout, int | float) and timeout else None,
        schema_note=note,
    )


def gate_problem(cls: type[ExecutableTask], executor_id: str) -> str | None:
    """Why a task may not use ``cls`` (a dangerous executor not enabled), or None."""
    if not getattr(cls, "dangerous", False):
        return None
    from aipartnerupflow.core.settings import CoreSettings

    if CoreSettings.get().executor_enabled(executor_id):
        return None
    return (
        f"executor {executor_id!r} can reach the host or the network on a task's say-so, so "
        f"it is off until the operator enables it: add {executor_id} to {ENABLE_SETTING} "
        f"(a comma-separated list of executor ids)"
    )


def params_problem(
    cls: type[ExecutableTask], executor_id: str, params: dict[str, Any]
) -> str | None:
    """Why ``params`` do not fit the class's ``params_schema``, or None."""
    schema = getattr(cls, "params_schema", None)
    if not isinstance(schema, dict):
        return None
    try:
        problem = input_problem(schema, params)
    except Exception as exc:
        return f"executor {executor_id!r} has an invalid params schema: {exc}"
    if problem and problem.startswith("input "):
        problem = "param " + problem[len("input ") :]  # the checker speaks of inputs
    return (
        f"params do not match the params schema of {executor_id!r}: {problem}" if problem else None
    )
