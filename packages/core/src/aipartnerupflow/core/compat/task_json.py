"""Task JSON of aipartnerupflow 0.9: the fields it carries that our task JSON does not.

The original's task objects (its docs, ``tasks get`` output fed back, files written for it)
carry row state next to the definition. A new task is always pending, so:

* ``status`` may be ``"pending"`` (or null); any other status is refused with a hint;
* ``progress`` may be 0, ``result`` and ``error`` null: the values a pending task has; anything
  else is refused (a finished task is brought over with ``apflow db import-legacy``);
* ``has_children`` and ``has_copy`` (booleans) and ``original_task_id`` are accepted and ignored:
  our store derives ``has_children`` from ``parent_id``; copy lineage belongs to stored rows;
* ``created_at``/``started_at``/``updated_at``/``completed_at`` are accepted and ignored: the store
  keeps time;
* a dependency may be a plain string, ``{"id": ...}`` or ``{"name": ...}`` (``id`` wins when both
  are given, as in the original), with ``required`` and ``type``; ``type`` may only be
  ``"result"``, the one kind the original defined (the dependency's result feeds the inputs).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IGNORED_FIELDS",
    "LEGACY_FIELDS",
    "PENDING_STATE_FIELDS",
    "check_manager_options",
    "legacy_create_options",
    "legacy_task_problems",
    "normalize_dependency",
    "normalize_legacy_task",
]

#: Fields of the original's rows accepted in task JSON and ignored (derived or store-kept).
IGNORED_FIELDS: tuple[str, ...] = (
    "has_children",
    "has_copy",
    "original_task_id",
    "created_at",
    "started_at",
    "updated_at",
    "completed_at",
)
#: Row-state fields accepted only with the value a new (pending) task has.
PENDING_STATE_FIELDS: tuple[str, ...] = ("status", "progress", "result", "error")
#: Every field of the original's task JSON that ours does not have.
LEGACY_FIELDS: frozenset[str] = frozenset(IGNORED_FIELDS + PENDING_STATE_FIELDS)

_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
_BOOLEAN_FIELDS = ("has_children", "has_copy")
_IMPORT_HINT = (
    "a new task is always pending; drop the field (stored tasks of aipartnerupflow 0.9 with "
    "their state are brought over with `apflow db import-legacy`)"
)


def _state_problem(key: str, value: Any) -> str | None:
    """Why ``key: value`` cannot be part of a new task, or None when it can."""
    if key == "status":
        if value is None or value == "pending":
            return None
        if value not in _STATUSES:
            return f"field 'status': unknown status {value!r} (a new task is 'pending')"
        return f"field 'status' is {value!r}: {_IMPORT_HINT}"
    if key == "progress":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is None or (number and value == 0):
            return None
        return f"field 'progress' is {value!r}: a new task starts at 0; {_IMPORT_HINT}"
    if value is None:  # result, error
        return None
    return f"field {key!r} is set: {_IMPORT_HINT}"


def normalize_dependency(dep: Any) -> tuple[Any, str | None]:
    """One dependency in our shape (``{"id", "required"}``), or the reason it is refused.

    Values that are neither a string nor an object are passed on for the schema to report.
    """
    if isinstance(dep, str):
        return {"id": dep}, None
    if not isinstance(dep, dict):
        return dep, None
    kind = dep.get("type")
    if kind is not None and kind != "result":
        return dep, (
            f"dependency type {kind!r} is not supported: the only type is 'result' (the "
            "dependency's result is merged into the inputs); drop 'type' or set it to 'result'"
        )
    ref = dep.get("id")
    if ref is None:
        ref = dep.get("name")
    if ref is None:
        return dep, (
            "a dependency needs 'id' (or 'name', the original's spelling) naming a task of "
            f"the array, got {dep!r}"
        )
    out: dict[str, Any] = {"id": ref}
    if "required" in dep:
        out["required"] = dep["required"]
    return out, None


def legacy_task_problems(item: dict[str, Any]) -> list[str]:
    """The reasons the original's fields in ``item`` cannot be part of a new task."""
    problems: list[str] = []
    for key in PENDING_STATE_FIELDS:
        if key in item:
            problem = _state_problem(key, item[key])
            if problem:
                problems.append(problem)
    for key in _BOOLEAN_FIELDS:
        value = item.get(key)
        if value is not None and not isinstance(value, bool):
            problems.append(f"field {key!r} must be true or false, not {value!r}")
    deps = item.get("dependencies")
    if isinstance(deps, list):
        for dep in deps:
            problem = normalize_dependency(dep)[1]
            if problem:
                problems.append(problem)
    return problems


def normalize_legacy_task(item: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``item`` without the original's extra fields and with dependencies in our shape, and
    the problems found (when there are problems the returned object must not be used)."""
    problems = legacy_task_problems(item)
    out = {k: v for k, v in item.items() if k not in LEGACY_FIELDS}
    deps = item.get("dependencies")
    if isinstance(deps, list):
        out["dependencies"] = [normalize_dependency(dep)[0] for dep in deps]
    return out, problems


def legacy_create_options(name: str, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``create_task(**options)`` without the original's keyword arguments, and the
    ``original_task_id`` given (or None); raises when one cannot be honoured.

    ``status``, ``progress``, ``result`` and ``error`` are checked as in task JSON;
    ``has_children``/``has_copy`` must be booleans and are derived by the store.
    """
    from aipartnerupflow.core.errors import ValidationError
    from aipartnerupflow.core.spec import TaskSpec

    legacy = {k: v for k, v in options.items() if k in LEGACY_FIELDS}
    problems = legacy_task_problems(legacy)
    rest = {k: v for k, v in options.items() if k not in legacy}
    unknown = sorted(set(rest) - set(TaskSpec.model_fields))
    if unknown:
        problems.append(
            f"unknown argument(s) {', '.join(unknown)}: custom task columns of aipartnerupflow "
            "0.9 (set_task_model_class) are not kept; put such data in inputs or params"
        )
    if problems:
        raise ValidationError(f"create_task({name!r}): " + "; ".join(problems))
    original = legacy.get("original_task_id")
    if original is not None and (not isinstance(original, str) or not original):
        raise ValidationError(
            f"create_task({name!r}): original_task_id must be a task id string, not {original!r}"
        )
    return rest, original


def check_manager_options(options: dict[str, Any]) -> None:
    """``TaskManager(db, **options)`` with 0.9's constructor arguments: ``root_task_id`` and
    ``executor_instances`` are accepted and unused (trees are run by id, executors are per task),
    ``use_demo=False`` is accepted; per-manager hooks and demo mode are refused with what to do.
    """
    from aipartnerupflow.core.errors import ConfigurationError

    problems: list[str] = []
    for key, value in options.items():
        if key in ("root_task_id", "executor_instances"):
            continue
        if key == "use_demo":
            if value:
                problems.append("use_demo=True: demo mode (canned results) is not kept")
        elif key in ("pre_hooks", "post_hooks"):
            if value:
                kind = key.removesuffix("s")
                problems.append(
                    f"{key}=: hooks are not per manager; register each with "
                    f"register_{kind}(hook) (they apply to every TaskManager of the process)"
                )
        else:
            problems.append(f"unknown argument {key!r}")
    if problems:
        raise ConfigurationError("TaskManager(): " + "; ".join(problems))
