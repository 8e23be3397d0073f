"""The MCP tools: thin adapters over core's :class:`TaskService`.

Every tool's input schema is ``params_schema(operation)`` of the task service, the same models
the A2A ``/tasks`` API publishes; the service validates and enforces every task rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aipartnerupflow.core.errors import AipartnerupflowError, ValidationError
from aipartnerupflow.core.executors import executor_info
from aipartnerupflow.core.service import TaskService, params_schema
from aipartnerupflow.core.tree import TaskTreeNode

__all__ = ["EXECUTORS_SCHEMA", "RUN_TOOLS", "TOOLS", "ToolSpec", "tree_dict"]

#: Input schema of ``executors_list`` (it takes no arguments).
EXECUTORS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: the service operation whose params model is its input schema."""

    name: str
    operation: str | None
    description: str

    def input_schema(self) -> dict[str, Any]:
        """The tool's JSON Schema (from the task service's models)."""
        if self.operation is None:
            return dict(EXECUTORS_SCHEMA)
        return params_schema(self.operation)


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "tasks_create",
        "create",
        "Validate and store a task tree (a flat array of task objects with id, name, "
        "parent_id, dependencies, schemas.method, inputs); returns it without running it.",
    ),
    ToolSpec(
        "tasks_run",
        "execute",
        "Start a run: a new tree (tasks) or a stored one (task_id, rerun); returns at once "
        "with root_task_id. Watch it with tasks_get, tasks_tree or the apflow://trees/{id} "
        "resource.",
    ),
    ToolSpec(
        "tasks_run_and_wait",
        "execute",
        "Run a new tree (tasks) or a stored one (task_id) to its end and return every task's "
        "result; sends progress notifications when the request carries a progress token.",
    ),
    ToolSpec("tasks_get", "get", "One task by task_id."),
    ToolSpec(
        "tasks_list",
        "list",
        "The caller's tasks, newest first, a page at a time (filters: status, root_id, "
        "parent_id, name, root_only; pass next_cursor back as cursor for the next page).",
    ),
    ToolSpec("tasks_tree", "tree", "Every task of the tree holding task_id."),
    ToolSpec(
        "tasks_cancel",
        "cancel",
        "Cancel task_id (or task_ids) with its descendants; running executors are stopped.",
    ),
    ToolSpec(
        "tasks_delete",
        "delete",
        "Delete a task and the tasks below it (none running, nothing else depending on them).",
    ),
    ToolSpec(
        "executors_list",
        None,
        "The executors this server can run, with their input and params schemas.",
    ),
)

#: Tools that start a run.
RUN_TOOLS = frozenset({"tasks_run", "tasks_run_and_wait"})


def tree_dict(node: TaskTreeNode) -> dict[str, Any]:
    """A tree as ``{root_id, tasks}``: every task (parents before children) with its
    ``parent_id``."""
    return {"root_id": node.task.id, "tasks": [n.task.to_dict() for n in node.walk()]}


Handler = Callable[[TaskService, dict[str, Any]], Awaitable[Any]]


async def _create(service: TaskService, args: dict[str, Any]) -> Any:
    created = await service.create(args)
    out = tree_dict(created.tree)
    if created.renamed:
        out["renamed"] = created.renamed
    return out


async def _get(service: TaskService, args: dict[str, Any]) -> Any:
    return (await service.get(args)).to_dict()


async def _list(service: TaskService, args: dict[str, Any]) -> Any:
    page = await service.list_tasks(args)
    return {"tasks": [t.to_dict() for t in page.tasks], "next_cursor": page.next_cursor}


async def _tree(service: TaskService, args: dict[str, Any]) -> Any:
    return tree_dict(await service.tree(args))


async def _cancel(service: TaskService, args: dict[str, Any]) -> Any:
    outcomes = await service.cancel(args)
    return {
        "outcomes": [
            {"task_id": o.task_id, "status": o.status, "cancelled": o.cancelled} for o in outcomes
        ]
    }


async def _delete(service: TaskService, args: dict[str, Any]) -> Any:
    deleted = await service.delete(args)
    return {"task_id": args.get("task_id"), "deleted_count": deleted}


async def _executors(service: TaskService, args: dict[str, Any]) -> Any:
    if args:
        raise ValidationError(
            "executors_list takes no arguments; unknown: " + ", ".join(sorted(map(str, args)))
        )
    registry = service.manager.registry
    found = []
    for executor_id in sorted(registry.ids()):
        try:
            cls = registry.get(executor_id)
        except AipartnerupflowError as exc:  # an installed plugin that cannot load
            found.append({"id": executor_id, "error": str(exc)})
            continue
        found.append(executor_info(cls, executor_id).to_dict())
    return {"executors": found}


#: Tools answered by one service call (the run tools are the server's).
SIMPLE_HANDLERS: dict[str, Handler] = {
    "tasks_create": _create,
    "tasks_get": _get,
    "tasks_list": _list,
    "tasks_tree": _tree,
    "tasks_cancel": _cancel,
    "tasks_delete": _delete,
    "executors_list": _executors,
}
