"""The parameters of every task-service operation, as pydantic models.

The same models validate calls from the CLI, the A2A ``/tasks`` API and the MCP server, and
produce their OpenAPI and tool schemas (:func:`params_schema`).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aipartnerupflow.core.errors import ParameterError, ValidationError
from aipartnerupflow.core.limits import DEFAULT_LIMITS, json_problems
from aipartnerupflow.core.spec import DependencySpec, RetrySpec

__all__ = [
    "EDITABLE_FIELDS",
    "OPERATIONS",
    "CancelParams",
    "CopyParams",
    "CountParams",
    "CreateParams",
    "DeleteParams",
    "ExecuteParams",
    "ListParams",
    "ParamsModel",
    "ResumeParams",
    "Status",
    "TaskRef",
    "UpdateParams",
    "params_schema",
    "parse_params",
]

Status = Literal["pending", "in_progress", "completed", "failed", "cancelled"]
Rerun = Literal["none", "all", "failed"]
P = TypeVar("P", bound="ParamsModel")

#: Fields of a stored task that ``update`` may change (besides ``status``).
EDITABLE_FIELDS = (
    "name",
    "priority",
    "inputs",
    "params",
    "schemas",
    "dependencies",
    "retry",
    "timeout_seconds",
)


class ParamsModel(BaseModel):
    """Base of the parameter models: unknown fields and lax coercion are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TaskRef(ParamsModel):
    """One task, by id."""

    task_id: str = Field(min_length=1, max_length=255, description="Task id")


class CreateParams(ParamsModel):
    """Validate and store a task tree (a flat array of task objects)."""

    tasks: list[Any] = Field(
        description="Task objects (TaskSpec), checked as a tree",
        json_schema_extra={"items": {"type": "object"}, "minItems": 1},
    )
    user_id: str | None = Field(
        default=None,
        max_length=255,
        description="Owner of the tasks (admins only; others always own what they create)",
    )
    id_conflict: Literal["renew", "fail"] = Field(
        default="renew",
        description="When a given id is already taken: give that task a fresh id (renew, "
        "reported in 'renamed') or refuse the tree (fail)",
    )
    queue: bool = Field(
        default=False, description="Enqueue the tree for workers (PostgreSQL) after storing it"
    )


class ListParams(ParamsModel):
    """Tasks matching filters, newest first, a page at a time."""

    status: list[Status] | Status | None = None
    user_id: str | None = Field(default=None, description="Owner filter (admins only)")
    root_id: str | None = Field(default=None, description="Only tasks of this tree")
    parent_id: str | None = Field(default=None, description="Only children of this task")
    name: str | None = Field(default=None, description="Only tasks with this name")
    search: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Only tasks whose name contains this text (any case) or whose id starts "
        "with it",
    )
    order: Literal["newest", "oldest"] = Field(
        default="newest", description="Creation order of the page: newest or oldest first"
    )
    root_only: bool | None = Field(
        default=None,
        description="Root tasks only (default: true unless root_id or parent_id is given)",
    )
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10**9)
    cursor: str | None = Field(
        default=None, description="'next_cursor' of the previous page (replaces offset)"
    )


class CountParams(ParamsModel):
    """Counts per status of the tasks matching filters (and their total)."""

    status: list[Status] | Status | None = None
    user_id: str | None = None
    root_id: str | None = None
    search: str | None = Field(
        default=None, min_length=1, max_length=255, description="As for list"
    )
    root_only: bool = False


class UpdateParams(ParamsModel):
    """Edit a task that is not running or completed, or change its status along the
    allowed transitions. The whole tree is validated after the change."""

    task_id: str = Field(min_length=1, max_length=255)
    status: Status | None = None
    name: str | None = Field(default=None, min_length=1, max_length=255)
    priority: int | None = Field(default=None, ge=0, le=3)
    inputs: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    schemas: dict[str, Any] | None = None
    dependencies: list[DependencySpec | str] | None = None
    retry: RetrySpec | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)

    def changes(self) -> dict[str, Any]:
        """The fields given (``None`` clears ``retry``/``timeout_seconds``)."""
        return {
            name: getattr(self, name) for name in EDITABLE_FIELDS if name in self.model_fields_set
        }


class DeleteParams(TaskRef):
    """Delete a task and the tasks below it."""

    force: bool = Field(
        default=False, description="Delete even running tasks or tasks others depend on"
    )


class CancelParams(ParamsModel):
    """Cancel tasks with their descendants and required dependents."""

    task_id: str | None = Field(default=None, min_length=1, max_length=255)
    task_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_of(self) -> CancelParams:
        if (self.task_id is None) == (self.task_ids is None):
            raise ValueError("give task_id or task_ids (one of them)")
        return self

    def ids(self) -> list[str]:
        """The ids to cancel."""
        return self.task_ids if self.task_ids is not None else [str(self.task_id)]


class CopyParams(TaskRef):
    """Copy the tree holding a task with fresh ids, every task pending."""

    user_id: str | None = Field(
        default=None, max_length=255, description="Owner of the copy (admins only)"
    )


class ExecuteParams(ParamsModel):
    """Run a stored tree (``task_id``) or a new one (``tasks``)."""

    task_id: str | None = Field(default=None, min_length=1, max_length=255)
    tasks: list[Any] | None = Field(
        default=None,
        description="Task objects (TaskSpec) of a new tree",
        json_schema_extra={"items": {"type": "object"}},
    )
    id_conflict: Literal["renew", "fail"] = Field(
        default="renew", description="With tasks: as for create"
    )
    rerun: Rerun = Field(
        default="none",
        description="none: unfinished tasks; failed: failed/cancelled tasks and their "
        "dependents; all: every task",
    )

    @model_validator(mode="after")
    def _one_of(self) -> ExecuteParams:
        if (self.task_id is None) == (self.tasks is None):
            raise ValueError("give task_id (a stored tree) or tasks (a new tree), not both")
        return self


class ResumeParams(ParamsModel):
    """Run again the caller's trees a crashed process left unfinished."""


#: Operation name -> parameter model (the surfaces add their prefix, e.g. ``tasks.``).
OPERATIONS: dict[str, type[ParamsModel]] = {
    "create": CreateParams,
    "get": TaskRef,
    "list": ListParams,
    "count": CountParams,
    "tree": TaskRef,
    "children": TaskRef,
    "state": TaskRef,
    "update": UpdateParams,
    "delete": DeleteParams,
    "cancel": CancelParams,
    "copy": CopyParams,
    "execute": ExecuteParams,
    "resume": ResumeParams,
}


def parse_params(model: type[P], raw: Any, operation: str) -> P:
    """Validate raw parameters; a :class:`ValidationError` lists every problem."""
    import pydantic

    if isinstance(raw, model):  # already parsed
        return raw
    if not isinstance(raw, dict):
        raise ValidationError(f"{operation}: parameters must be a JSON object")
    problems = json_problems(raw, "params", DEFAULT_LIMITS)
    if problems:
        raise _problems_error(operation, problems)
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        found = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "params"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown parameter; allowed: " + ", ".join(model.model_fields)
            found.append(f"{where}: {msg}")
        raise _problems_error(operation, found) from None


def _problems_error(operation: str, problems: list[str]) -> ParameterError:
    return ParameterError(operation, problems)


def params_schema(operation: str) -> dict[str, Any]:
    """The JSON Schema of an operation's parameters (for OpenAPI and MCP tool schemas)."""
    schema: dict[str, Any] = OPERATIONS[operation].model_json_schema()
    return schema
