"""Whole-tree validation: everything is checked before anything is written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aipartnerupflow.core.errors import PluginError, TaskTreeValidationError
from aipartnerupflow.core.executors.metadata import gate_problem, params_problem
from aipartnerupflow.core.inputs import check_inputs
from aipartnerupflow.core.limits import (
    DEFAULT_LIMITS,
    TaskLimits,
    json_problems_sized,
    reprs_exceed,
)
from aipartnerupflow.core.models import TaskModel, new_task_id
from aipartnerupflow.core.registry import ExecutorRegistry

__all__ = [
    "check_raw_tasks",
    "closest_executor",
    "executor_problems",
    "resolve_method",
    "structure_problems",
    "tasks_from_array",
    "validate_tasks",
]

_specs: Any = None


def _spec_adapter() -> Any:
    """The pydantic validator for task JSON, built on first use (keeps imports fast)."""
    global _specs
    if _specs is None:
        import pydantic

        from aipartnerupflow.core.spec import TaskSpec

        _specs = pydantic.TypeAdapter(list[TaskSpec])
    return _specs


def resolve_method(task: TaskModel, registry: ExecutorRegistry) -> str | None:
    """The executor id of a task: ``schemas.method``, else ``params.executor_id``, else its name
    when an executor has that id; None makes it a grouping task that runs nothing."""
    method = task.method
    if method:
        return method
    executor_id = task.params.get("executor_id") if isinstance(task.params, dict) else None
    if isinstance(executor_id, str) and executor_id:
        return executor_id
    try:
        return task.name if task.name in registry else None
    except PluginError:
        return task.name


def _label(index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    ident = item.get("id") if isinstance(item, dict) else None
    shown = f" {name!r}" if isinstance(name, str) else ""
    shown += f" (id {ident!r})" if isinstance(ident, str) else ""
    return f"task #{index + 1}{shown}"


def check_raw_tasks(raw: Any, limits: TaskLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """The task objects of raw task JSON, or every reason why it cannot be a task tree
    (not an array of objects, too many tasks, too large, NaN, NUL, too deeply nested)."""
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise TaskTreeValidationError(["expected a non-empty JSON array of task objects"])
    if len(raw) > limits.max_tasks:
        raise TaskTreeValidationError(
            [f"too many tasks: {len(raw)}; a tree holds at most {limits.max_tasks} tasks"]
        )
    problems: list[str] = []
    bound = 0
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(
                f"{_label(index, item)}: expected a JSON object, got {type(item).__name__}"
            )
            continue
        found, size = json_problems_sized(item, _label(index, item), limits)
        problems.extend(found)
        bound += size
    if not problems and reprs_exceed(raw, bound, limits.max_tree_bytes):
        problems.append(
            f"the tree is larger than {limits.max_tree_bytes} characters; split it or pass "
            "big data by reference"
        )
    if problems:
        raise TaskTreeValidationError(problems)
    return raw


def tasks_from_array(
    raw: Any, *, user_id: str | None = None, limits: TaskLimits = DEFAULT_LIMITS
) -> list[TaskModel]:
    """Parse task JSON (a list of task objects) into tasks with resolved references."""
    raw = check_raw_tasks(raw, limits)
    problems: list[str] = []
    raw = _without_legacy_fields(raw)
    import pydantic

    from aipartnerupflow.core.spec import TaskSpec

    try:
        specs = _spec_adapter().validate_python(raw)
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            index = int(loc[0]) if loc and loc[0].isdigit() else 0
            where = ".".join(loc[1:]) or "task"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = (
                    "unknown field (check the spelling; allowed: "
                    + ", ".join(TaskSpec.model_fields)
                    + ")"
                )
            problems.append(f"{_label(index, raw[index])}: field '{where}': {msg}")
        raise TaskTreeValidationError(problems) from None

    ids = [spec.id or new_task_id() for spec in specs]
    seen: dict[str, int] = {}
    for index, task_id in enumerate(ids):
        if task_id in seen:
            problems.append(
                f"duplicate task id {task_id!r} (tasks #{seen[task_id] + 1} and "
                f"#{index + 1}); every id in the array must be unique"
            )
        seen.setdefault(task_id, index)
    by_name: dict[str, list[str]] = {}
    for spec, task_id in zip(specs, ids, strict=True):
        by_name.setdefault(spec.name, []).append(task_id)
    id_set = set(ids)

    def resolve(ref: str, what: str, index: int) -> str | None:
        if ref in id_set:
            return ref
        named = by_name.get(ref, [])
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            problems.append(
                f"{_label(index, raw[index])}: {what} {ref!r} is ambiguous: "
                f"{len(named)} tasks have that name; refer to the task by id"
            )
        else:
            problems.append(
                f"{_label(index, raw[index])}: {what} {ref!r} is not a task of this "
                "array (use the id or the name of a task in the same array)"
            )
        return None

    tasks: list[TaskModel] = []
    for index, (spec, task_id) in enumerate(zip(specs, ids, strict=True)):
        parent = resolve(spec.parent_id, "parent_id", index) if spec.parent_id else None
        deps: list[dict[str, Any]] = []
        for dep in spec.dependencies:
            target = resolve(dep.id, "dependency", index)
            if target is not None:
                deps.append({"id": target, "required": dep.required})
        tasks.append(
            TaskModel(
                id=task_id,
                name=spec.name,
                parent_id=parent,
                user_id=spec.user_id or user_id,
                priority=spec.priority,
                position=index,
                dependencies=deps,
                inputs=spec.inputs,
                params=spec.params,
                schemas=spec.schemas,
                retry=spec.retry.model_dump() if spec.retry else None,
                timeout_seconds=spec.timeout_seconds,
            )
        )
    if problems:
        raise TaskTreeValidationError(problems)
    return tasks


def _without_legacy_fields(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task objects with aipartnerupflow 0.9's extra fields checked and removed
    (:mod:`aipartnerupflow.core.compat.task_json`)."""
    from aipartnerupflow.core.compat.task_json import LEGACY_FIELDS, normalize_legacy_task

    problems: list[str] = []
    cleaned: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        if isinstance(item, dict) and LEGACY_FIELDS.isdisjoint(item):
            deps = item.get("dependencies")
            if not isinstance(deps, list) or all(
                isinstance(d, dict) and "id" in d and "type" not in d for d in deps
            ):
                cleaned.append(item)  # our own shape (the common case): nothing to convert
                continue
        out, found = normalize_legacy_task(item)
        problems.extend(f"{_label(index, item)}: {p}" for p in found)
        cleaned.append(out)
    if problems:
        raise TaskTreeValidationError(problems)
    return cleaned


def validate_tasks(
    tasks: Sequence[TaskModel],
    registry: ExecutorRegistry,
    *,
    check_static_inputs: bool = True,
    limits: TaskLimits = DEFAULT_LIMITS,
) -> TaskModel:
    """Check a tree (one root, connected, no cycles, known executors, static inputs) and set
    ``root_id`` and ``has_children``; returns the root. Raises with every problem found."""
    root, problems = structure_problems(tasks, limits)
    if root is None:
        raise TaskTreeValidationError(problems)
    problems += dependency_problems(tasks)
    problems += executor_problems(tasks, registry, check_static_inputs=check_static_inputs)
    if problems:
        raise TaskTreeValidationError(problems)
    return root


def structure_problems(
    tasks: Sequence[TaskModel], limits: TaskLimits = DEFAULT_LIMITS
) -> tuple[TaskModel | None, list[str]]:
    """The root and the problems of the parent structure; sets ``root_id``/``has_children``.

    The root is None when the tree has no single root (nothing else can then be checked).
    """
    problems: list[str] = []
    if len(tasks) > limits.max_tasks:
        return None, [f"too many tasks: {len(tasks)}; a tree holds at most {limits.max_tasks}"]
    by_id = {t.id: t for t in tasks}
    roots = [t for t in tasks if not t.parent_id]
    for t in tasks:
        if t.parent_id and t.parent_id not in by_id:
            problems.append(f"task {t.name!r} ({t.id}): parent {t.parent_id!r} is not in the tree")
    if not roots:
        problems.append("no root task: exactly one task must have no parent_id")
    elif len(roots) > 1:
        names = ", ".join(f"{r.name!r} ({r.id})" for r in roots)
        problems.append(
            f"several root tasks: {names}; a tree has exactly one root, so give the "
            "others a parent_id"
        )
    if problems:
        return None, problems
    root = roots[0]

    children: dict[str, list[TaskModel]] = {}
    for t in tasks:
        if t.parent_id:
            children.setdefault(t.parent_id, []).append(t)
    depth = {root.id: 0}
    stack = [root.id]
    deepest = 0
    while stack:
        parent = stack.pop()
        for child in children.get(parent, []):
            if child.id not in depth:
                depth[child.id] = depth[parent] + 1
                deepest = max(deepest, depth[child.id])
                stack.append(child.id)
    if deepest > limits.max_tree_depth:
        problems.append(
            f"the tree is {deepest} levels deep; at most {limits.max_tree_depth} levels of "
            "parent_id are allowed (use dependencies, not nesting, to order long chains)"
        )
    for t in tasks:
        if t.id not in depth:
            problems.append(
                f"task {t.name!r} ({t.id}) is not connected to the root: its parent chain loops"
            )
        t.root_id = None if t is root else root.id
        t.has_children = t.id in children
    return root, problems


def dependency_problems(tasks: Sequence[TaskModel]) -> list[str]:
    """Self-dependencies, references outside the tree and dependency cycles."""
    problems: list[str] = []
    by_id = {t.id: t for t in tasks}
    for t in tasks:
        for dep_id in t.dependency_ids():
            if dep_id == t.id:
                problems.append(f"task {t.name!r} ({t.id}) depends on itself")
            elif dep_id not in by_id:
                problems.append(
                    f"task {t.name!r} ({t.id}) depends on {dep_id!r}, which is not in the tree"
                )
    cycle = _find_cycle(tasks, by_id)
    if cycle:
        path = " -> ".join(f"{by_id[i].name!r}" for i in cycle)
        problems.append(f"dependency cycle: {path}; remove one of these dependencies")
    return problems


def closest_executor(word: str, registry: ExecutorRegistry) -> str | None:
    """The installed executor id closest to ``word``, if any is close."""
    import difflib

    close = difflib.get_close_matches(word, registry.ids(), n=1, cutoff=0.5)
    return close[0] if close else None


def executor_problems(
    tasks: Sequence[TaskModel], registry: ExecutorRegistry, *, check_static_inputs: bool = True
) -> list[str]:
    """Every task's executor: known, and (without dependencies) given valid static inputs.

    Only a task with children may have no executor (a grouping task); a leaf without one
    would complete having done nothing, so it is refused with the closest executor id.
    """
    problems: list[str] = []
    for t in tasks:
        method = resolve_method(t, registry)
        if method is None:
            if not t.has_children:
                problems.append(_no_executor(t, registry))
            continue
        try:
            cls = registry.get(method)
        except PluginError as exc:
            problems.append(f"task {t.name!r} ({t.id}): {exc}")
            continue
        refused = gate_problem(cls, method) or params_problem(cls, method, t.params)
        if refused:
            problems.append(f"task {t.name!r} ({t.id}): {refused}")
            continue
        if check_static_inputs and not t.dependencies:
            problem = check_inputs(cls, t.params, t.inputs)
            if problem:
                problems.append(f"task {t.name!r} ({t.id}): {problem}")
    return problems


def _no_executor(task: TaskModel, registry: ExecutorRegistry) -> str:
    hint = closest_executor(task.name, registry)
    text = (
        f"task {task.name!r} ({task.id}) has no executor and no children: set "
        '"schemas": {"method": "<executor id>"}'
    )
    if hint:
        text += f" (did you mean {hint!r}?)"
    installed = registry.ids()
    text += f"; installed executors: {', '.join(installed) if installed else 'none'}"
    return text + ". Only a task with children may be a grouping task that runs nothing"


def _find_cycle(tasks: Iterable[TaskModel], by_id: dict[str, TaskModel]) -> list[str] | None:
    """One dependency cycle as a closed path of ids, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for start in by_id:
        if start in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(by_id[start].dependency_ids()))]
        state[start] = 1
        path.append(start)
        while stack:
            node, it = stack[-1]
            advanced = False
            for dep in it:
                if dep not in by_id or dep == node:
                    continue
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    stack.append((dep, iter(by_id[dep].dependency_ids())))
                    advanced = True
                    break
            if not advanced:
                state[node] = 2
                path.pop()
                stack.pop()
    return None
