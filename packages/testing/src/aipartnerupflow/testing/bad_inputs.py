"""One corpus of bad task input that every surface must refuse with the same reason.

The core's ``TaskService``, the A2A ``/tasks`` API, the CLI and the MCP server all run these
cases; each case names a fragment every surface's error message must contain. Nothing may
be written by a refused request.

``CREATE_CASES`` are whole trees to create; ``UPDATE_CASES`` are changes to task ``a`` of
:func:`base_tree` (a root with children ``a`` and ``b``, ``b`` depending on ``a``). Both are
built from a prefix so each run can use fresh ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CREATE_CASES", "EXECUTOR", "UPDATE_CASES", "BadCreate", "BadUpdate", "base_tree"]

#: An executor every installation has (core's built-in).
EXECUTOR = "aggregate_results_executor"


def _task(ident: str, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "name": ident, "schemas": {"method": EXECUTOR}, **extra}


def base_tree(prefix: str) -> list[dict[str, Any]]:
    """A valid tree: ``{prefix}root`` with children ``{prefix}a`` and ``{prefix}b`` (b needs a)."""
    return [
        _task(f"{prefix}root"),
        _task(f"{prefix}a", parent_id=f"{prefix}root"),
        _task(f"{prefix}b", parent_id=f"{prefix}root", dependencies=[f"{prefix}a"]),
    ]


def _one(**extra: Any) -> Callable[[str], list[dict[str, Any]]]:
    return lambda p: [_task(f"{p}one", **extra)]


def _nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"deeper": value}
    return value


def _chain(levels: int) -> Callable[[str], list[dict[str, Any]]]:
    def build(p: str) -> list[dict[str, Any]]:
        tasks = [_task(f"{p}n0")]
        tasks += [_task(f"{p}n{i}", parent_id=f"{p}n{i - 1}") for i in range(1, levels + 1)]
        return tasks

    return build


@dataclass(frozen=True)
class BadCreate:
    """A tree that creation must refuse; ``expect`` is in the error message."""

    name: str
    tasks: Callable[[str], list[dict[str, Any]]]
    expect: str


@dataclass(frozen=True)
class BadUpdate:
    """A change of task ``{prefix}a`` that an update must refuse; ``expect`` is in the error."""

    name: str
    fields: Callable[[str], dict[str, Any]]
    expect: str


CREATE_CASES: tuple[BadCreate, ...] = (
    BadCreate("priority_negative", _one(priority=-5), "greater than or equal to 0"),
    BadCreate("priority_too_high", _one(priority=99), "less than or equal to 3"),
    BadCreate("priority_string", _one(priority="1"), "valid integer"),
    BadCreate("priority_bool", _one(priority=True), "valid integer"),
    BadCreate("timeout_negative", _one(timeout_seconds=-1), "greater than 0"),
    BadCreate(
        "max_attempts_huge", _one(retry={"max_attempts": 10**9}), "less than or equal to 100"
    ),
    BadCreate("retry_string", _one(retry="x"), "field 'retry'"),
    BadCreate("dependencies_not_a_list", _one(dependencies="x"), "valid list"),
    BadCreate("dependency_missing", _one(dependencies=["nowhere"]), "is not a task of this array"),
    BadCreate(
        "self_dependency",
        lambda p: [_task(f"{p}one", dependencies=[f"{p}one"])],
        "depends on itself",
    ),
    BadCreate(
        "cycle",
        lambda p: [
            _task(f"{p}root"),
            _task(f"{p}x", parent_id=f"{p}root", dependencies=[f"{p}y"]),
            _task(f"{p}y", parent_id=f"{p}root", dependencies=[f"{p}x"]),
        ],
        "dependency cycle",
    ),
    BadCreate(
        "unknown_executor",
        _one(schemas={"method": "aggregate_results_executr"}),
        "Did you mean 'aggregate_results_executor'",
    ),
    BadCreate(
        "leaf_without_executor",
        lambda p: [{"id": f"{p}one", "name": "aggregate_results"}],
        "did you mean 'aggregate_results_executor'",
    ),
    BadCreate(
        "method_not_a_string", _one(schemas={"method": 5}), "schemas.method must be an executor id"
    ),
    BadCreate("nan_input", _one(inputs={"x": float("nan")}), "is not a JSON number"),
    BadCreate("infinite_input", _one(inputs={"x": float("inf")}), "is not a JSON number"),
    BadCreate("nul_in_name", lambda p: [_task(f"{p}one", name="a\x00b")], "NUL character"),
    BadCreate("deeply_nested_inputs", _one(inputs=_nested(40)), "nested more than 32 levels"),
    BadCreate("tree_too_deep", _chain(150), "levels deep"),
    BadCreate("unknown_field", _one(colour="red"), "unknown field"),
)


UPDATE_CASES: tuple[BadUpdate, ...] = (
    BadUpdate("priority_negative", lambda p: {"priority": -5}, "greater than or equal to 0"),
    BadUpdate("priority_too_high", lambda p: {"priority": 99}, "less than or equal to 3"),
    BadUpdate("priority_string", lambda p: {"priority": "1"}, "valid integer"),
    BadUpdate("priority_bool", lambda p: {"priority": True}, "valid integer"),
    BadUpdate("timeout_negative", lambda p: {"timeout_seconds": -1}, "greater than 0"),
    BadUpdate(
        "max_attempts_huge",
        lambda p: {"retry": {"max_attempts": 10**9}},
        "less than or equal to 100",
    ),
    BadUpdate("retry_string", lambda p: {"retry": "x"}, "retry"),
    BadUpdate("dependencies_not_a_list", lambda p: {"dependencies": "x"}, "valid list"),
    BadUpdate(
        "dependency_missing", lambda p: {"dependencies": ["nowhere"]}, "which is not in the tree"
    ),
    BadUpdate("self_dependency", lambda p: {"dependencies": [f"{p}a"]}, "depends on itself"),
    BadUpdate("cycle", lambda p: {"dependencies": [f"{p}b"]}, "dependency cycle"),
    BadUpdate(
        "unknown_executor",
        lambda p: {"schemas": {"method": "no_such_executor"}},
        "unknown executor",
    ),
    BadUpdate("leaf_without_executor", lambda p: {"schemas": {}}, "has no executor"),
    BadUpdate(
        "method_not_a_string",
        lambda p: {"schemas": {"method": 5}},
        "schemas.method must be an executor id",
    ),
    BadUpdate("nan_input", lambda p: {"inputs": {"x": float("nan")}}, "is not a JSON number"),
    BadUpdate("nul_in_name", lambda p: {"name": "a\x00b"}, "NUL character"),
    BadUpdate("reparent", lambda p: {"parent_id": f"{p}b"}, "parent_id cannot be changed"),
    BadUpdate("structural_field", lambda p: {"root_id": "x"}, "unknown parameter"),
    BadUpdate("unknown_field", lambda p: {"colour": "red"}, "unknown parameter"),
)
