"""``TaskModel``: one stored task."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from aipartnerupflow.core.status import TaskStatus

__all__ = ["TASK_COLUMNS", "TaskModel", "new_task_id"]


def new_task_id() -> str:
    """A fresh task id (UUID4 string)."""
    return str(uuid.uuid4())


@dataclass(slots=True, eq=False)
class TaskModel:
    """A task row. ``schemas.method`` picks the executor, ``params`` are its constructor
    arguments and ``inputs`` the argument of ``execute()``."""

    name: str
    id: str = field(default_factory=new_task_id)
    parent_id: str | None = None
    root_id: str | None = None
    user_id: str | None = None
    status: str = TaskStatus.PENDING.value
    priority: int = 2
    position: int = 0
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    schemas: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    progress: float = 0.0
    attempts: int = 0
    retry: dict[str, Any] | None = None
    timeout_seconds: float | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    has_children: bool = False
    original_task_id: str | None = None
    has_copy: bool = False
    dispatch: str = "local"
    open_deps: int = 0
    dependents: list[str] = field(default_factory=list)
    run_after: datetime | None = None
    cancel_requested: bool = False

    @property
    def method(self) -> str | None:
        """The executor id from ``schemas.method`` (None for a grouping task)."""
        method = self.schemas.get("method") if isinstance(self.schemas, dict) else None
        return method if isinstance(method, str) and method else None

    def dependency_ids(self) -> list[str]:
        """Ids of the tasks this one depends on."""
        return [d["id"] for d in self.dependencies]

    def to_dict(self) -> dict[str, Any]:
        """Every column, timestamps as ISO strings."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


TASK_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskModel))
