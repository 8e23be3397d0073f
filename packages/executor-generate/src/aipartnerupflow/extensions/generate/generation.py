"""Requirement in, validated task tree out: the loop shared by ``generate_executor`` and
``apflow generate task-tree``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aipartnerupflow.core.errors import PermanentError, PluginError, TaskTreeValidationError
from aipartnerupflow.core.executors.metadata import gate_problem
from aipartnerupflow.core.inputs import check_inputs
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.validation import resolve_method, tasks_from_array, validate_tasks
from aipartnerupflow.extensions.generate.prompt import (
    available_executors,
    feedback,
    system_prompt,
)
from aipartnerupflow.extensions.llm import Caller, JsonProblem, Request, parse_json_answer

__all__ = ["Generated", "check_tree", "generate_tree"]


@dataclass(slots=True)
class Generated:
    """A valid tree and how it was obtained."""

    tasks: list[dict[str, Any]]
    rounds: int
    problems_seen: list[list[str]]


def _fresh_ids(
    raw: list[dict[str, Any]], models: list[Any], user_id: str | None
) -> list[dict[str, Any]]:
    """The array with new UUIDs (so it can be created again and again), references remapped
    (also those given by name), and every task owned by ``user_id``."""
    new = {m.id: str(uuid.uuid4()) for m in models}
    out = []
    for item, model in zip(raw, models, strict=True):
        task = {k: v for k, v in item.items() if k != "user_id"}
        task["id"] = new[model.id]
        if model.parent_id:
            task["parent_id"] = new[model.parent_id]
        if model.dependencies:
            task["dependencies"] = [
                {"id": new[d["id"]], "required": d.get("required", True)}
                for d in model.dependencies
            ]
        if user_id is not None:
            task["user_id"] = user_id
        out.append(task)
    return out


def check_tree(value: Any, registry: ExecutorRegistry, user_id: str | None) -> list[dict[str, Any]]:
    """The tree with fresh ids when ``value`` passes the engine's full validation; raises
    :class:`TaskTreeValidationError` (every problem) otherwise."""
    if isinstance(value, dict) and isinstance(value.get("tasks"), list):
        value = value["tasks"]  # a common wrapping
    if not isinstance(value, list):
        raise TaskTreeValidationError(["the answer must be a JSON array of task objects"])
    models = tasks_from_array(value, user_id=user_id)
    methods = [m.schemas.get("method") for m in models]
    missing = [m.name for m, meth in zip(models, methods, strict=True) if not meth]
    if missing:
        raise TaskTreeValidationError(
            [f"task {n!r} has no schemas.method (an executor id)" for n in missing]
        )
    try:
        validate_tasks(models, registry)
    except TaskTreeValidationError as exc:
        # The engine stops at structural problems; name the executor problems too, so one
        # round can fix everything.
        extra = [p for p in _executor_problems(models, registry) if p not in exc.problems]
        raise TaskTreeValidationError([*exc.problems, *extra]) from None
    return _fresh_ids(value, models, user_id)


def _executor_problems(models: list[Any], registry: ExecutorRegistry) -> list[str]:
    """Unknown or refused executors and inputs that do not match their schema."""
    problems = []
    for t in models:
        method = resolve_method(t, registry)
        if method is None:
            continue
        try:
            cls = registry.get(method)
        except PluginError as exc:
            problems.append(f"task {t.name!r} ({t.id}): {exc}")
            continue
        refused = gate_problem(cls, method)
        if refused:
            problems.append(f"task {t.name!r} ({t.id}): {refused}")
        elif not t.dependencies:
            problem = check_inputs(cls, t.params, t.inputs)
            if problem:
                problems.append(f"task {t.name!r} ({t.id}): {problem}")
    return problems


async def generate_tree(
    requirement: str,
    request: Request,
    caller: Caller,
    registry: ExecutorRegistry,
    *,
    max_rounds: int,
    user_id: str | None = None,
    executors: list[str] | None = None,
) -> Generated:
    """Ask the model for a tree; feed validation errors back for at most ``max_rounds``."""
    offered = available_executors(registry, executors)
    if not offered:
        raise PermanentError(
            "no executor is available for a generated tree (install executor packages, or "
            "check the 'executors' input)"
        )
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(offered)},
        {"role": "user", "content": requirement},
    ]
    seen: list[list[str]] = []
    for round_no in range(1, max_rounds + 1):
        answer = await caller.call(
            request.model,
            messages,
            request.params,
            api_key=request.api_key,
            stream=request.stream,
            timeout=request.timeout,
        )
        try:
            value = parse_json_answer(answer.content, None)
            tasks = check_tree(value, registry, user_id)
        except JsonProblem as exc:
            problems = exc.problems
        except TaskTreeValidationError as exc:
            problems = exc.problems
        else:
            return Generated(tasks, round_no, seen)
        seen.append(problems)
        messages += [
            {"role": "assistant", "content": answer.content or ""},
            {"role": "user", "content": feedback(problems)},
        ]
    last = "; ".join(seen[-1]) if seen else "no answer"
    raise PermanentError(
        f"the model gave no valid task tree in {max_rounds} round(s); the last answer's "
        f"problems: {last} (reword the requirement, raise max_rounds, or use a stronger model)"
    )
