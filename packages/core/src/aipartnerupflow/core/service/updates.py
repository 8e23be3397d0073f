"""Changing a stored task: the same checks as creation, on the whole tree after the change."""

from __future__ import annotations

import dataclasses
from typing import Any

from aipartnerupflow.core.errors import (
    TaskConflictError,
    TaskTreeValidationError,
    ValidationError,
)
from aipartnerupflow.core.limits import DEFAULT_LIMITS, TaskLimits, json_problems
from aipartnerupflow.core.models import TaskModel
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.service.params import EDITABLE_FIELDS
from aipartnerupflow.core.status import TaskStatus
from aipartnerupflow.core.storage.base import TaskStorage
from aipartnerupflow.core.validation import validate_tasks

__all__ = [
    "ALLOWED_TRANSITIONS",
    "STRUCTURAL_FIELDS",
    "check_edit_allowed",
    "check_structure_unchanged",
    "check_transition",
    "validated_changes",
]

#: Manual status changes (a running task changes status only by running).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"cancelled"}),
    "failed": frozenset({"pending"}),
    "cancelled": frozenset({"pending"}),
    "completed": frozenset({"pending"}),
    "in_progress": frozenset(),
}

#: Columns that place a task in its tree; an update never changes them.
STRUCTURAL_FIELDS = frozenset(
    {"id", "parent_id", "root_id", "has_children", "original_task_id", "dependents", "open_deps"}
)


def check_structure_unchanged(fields: dict[str, Any], task: TaskModel) -> None:
    """Refuse changes of the tree structure (re-parenting would corrupt root ids and flags)."""
    changed = sorted(k for k in fields if k in STRUCTURAL_FIELDS and fields[k] != getattr(task, k))
    if "parent_id" in changed:
        raise ValidationError(
            f"task {task.id!r}: parent_id cannot be changed; moving a task to another parent "
            "is not supported. Copy the tree (tasks copy) and edit the copy, or create the "
            "tree again with the new structure"
        )
    if changed:
        raise ValidationError(
            f"task {task.id!r}: {', '.join(changed)} cannot be changed; they are set from the "
            "tree's structure when it is created"
        )


def check_transition(task: TaskModel, status: str) -> None:
    """Refuse a manual status change the task's current status does not allow."""
    if status == task.status:
        return
    allowed = ALLOWED_TRANSITIONS.get(task.status, frozenset())
    if status not in allowed:
        shown = ", ".join(sorted(allowed)) or "none"
        raise TaskConflictError(
            f"task {task.id!r}: status cannot change from {task.status!r} to {status!r} "
            f"(allowed: {shown})"
        )


def check_edit_allowed(task: TaskModel, new_status: str | None) -> None:
    """Refuse edits of running tasks, and of completed ones unless reset to pending."""
    status = new_status or task.status
    if task.status == TaskStatus.IN_PROGRESS:
        raise TaskConflictError(
            f"task {task.id!r} is running and cannot be edited; cancel it first"
        )
    if status == TaskStatus.COMPLETED:
        raise TaskConflictError(
            f"task {task.id!r} is completed and cannot be edited: its result came from the "
            "current definition. Reset it with status 'pending' in the same update, or copy "
            "the tree and edit the copy"
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _resolve(ref: str, tasks: list[TaskModel]) -> str:
    if any(t.id == ref for t in tasks):
        return ref
    named = [t.id for t in tasks if t.name == ref]
    return named[0] if len(named) == 1 else ref


async def validated_changes(
    storage: TaskStorage,
    registry: ExecutorRegistry,
    task: TaskModel,
    changes: dict[str, Any],
    *,
    limits: TaskLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """Check definition changes as creation would, on the whole tree after the change;
    returns the column values to store. Raises :class:`TaskTreeValidationError`."""
    import pydantic

    from aipartnerupflow.core.spec import TaskSpec

    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            f"field(s) {', '.join(unknown)} cannot be edited; editable: "
            + ", ".join(EDITABLE_FIELDS)
        )
    plain = {k: _plain(v) for k, v in changes.items()}
    label = f"task {task.name!r} ({task.id})"
    problems = json_problems(plain, label, limits)
    if problems:
        raise TaskTreeValidationError(problems)
    current: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "priority": task.priority,
        "dependencies": task.dependencies,
        "inputs": task.inputs,
        "params": task.params,
        "schemas": task.schemas,
        "retry": task.retry,
        "timeout_seconds": task.timeout_seconds,
    }
    try:
        spec = TaskSpec.model_validate({**current, **plain})
    except pydantic.ValidationError as exc:
        raise TaskTreeValidationError(
            [
                f"{label}: field '{'.'.join(str(p) for p in e['loc']) or 'task'}': {e['msg']}"
                for e in exc.errors()
            ]
        ) from None
    tree = await storage.get_tree(task.root_id or task.id)
    values: dict[str, Any] = {}
    for name in plain:
        if name == "dependencies":
            values[name] = [
                {"id": _resolve(d.id, tree), "required": d.required} for d in spec.dependencies
            ]
        elif name == "retry":
            values[name] = spec.retry.model_dump() if spec.retry else None
        else:
            values[name] = getattr(spec, name)
    copies = [dataclasses.replace(t) for t in tree]
    for t in copies:
        if t.id == task.id:
            for name, value in values.items():
                setattr(t, name, value)
    validate_tasks(copies, registry, limits=limits)
    return values
