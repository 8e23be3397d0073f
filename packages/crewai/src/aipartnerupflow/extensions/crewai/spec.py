"""Crew definitions from JSON, checked without importing crewai.

An agent: ``role`` and ``goal`` (required), ``backstory``, ``llm`` (a ``provider/model`` string
or ``{"model": ..., "temperature": ..., "max_tokens": ..., "top_p": ...}``), ``tools`` (names in
the tool registry), ``max_iter``, ``allow_delegation``, ``verbose``; ``name`` (default: the role)
is how tasks refer to it. A task: ``description`` (required), ``agent`` (an agent's name or
role; default: the only agent), ``expected_output``, ``context`` (names or indexes of earlier
tasks whose outputs it reads), ``name``. Both may come as a list or as a mapping name -> object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.errors import InputValidationError

__all__ = [
    "AgentSpec",
    "CrewSpec",
    "LlmSpec",
    "TaskSpec",
    "check_inputs",
    "parse_crew",
    "placeholders",
]

#: crewai's placeholder syntax: ``{name}``.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")
MAX_INPUT_DEPTH = 64

#: The expected output of a task whose JSON gives none (crewai requires one).
DEFAULT_EXPECTED_OUTPUT = "A complete, accurate answer to the task."

_AGENT_KEYS = frozenset(
    {"name", "role", "goal", "backstory", "llm", "tools", "max_iter", "allow_delegation", "verbose"}
)
_TASK_KEYS = frozenset({"name", "description", "expected_output", "agent", "context"})
_LLM_KEYS = frozenset({"model", "temperature", "max_tokens", "top_p", "seed"})
_PROCESSES = ("sequential",)
MAX_AGENTS = 50
MAX_TASKS = 200
MAX_TEXT = 100_000


@dataclass(frozen=True, slots=True)
class LlmSpec:
    """A model and its options (the endpoint and key come from the operator's settings)."""

    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    role: str
    goal: str
    backstory: str
    llm: LlmSpec | None
    tools: tuple[str, ...]
    max_iter: int | None
    allow_delegation: bool
    verbose: bool


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    description: str
    expected_output: str
    agent: str
    context: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CrewSpec:
    name: str
    agents: tuple[AgentSpec, ...]
    tasks: tuple[TaskSpec, ...]
    llm: LlmSpec | None
    process: str
    verbose: bool


def _fail(where: str, problem: str) -> InputValidationError:
    return InputValidationError(f"{where}: {problem}")


def _text(value: Any, where: str, *, required: bool = True, default: str = "") -> str:
    if value is None and not required:
        return default
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "must be a non-empty string")
    if "\x00" in value:
        raise _fail(where, "must not contain NUL characters")
    if len(value) > MAX_TEXT:
        raise _fail(where, f"is longer than {MAX_TEXT} characters")
    return value


def _bool(value: Any, where: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(where, "must be true or false")
    return value


def _items(value: Any, where: str, limit: int) -> list[tuple[str | None, Any]]:
    """(name from a mapping key or None, item) pairs of a list or mapping."""
    if isinstance(value, Mapping):
        pairs: list[tuple[str | None, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        pairs = [(None, v) for v in value]
    else:
        raise _fail(where, "must be a list of objects (or an object of named objects)")
    if not pairs:
        raise _fail(where, "must not be empty")
    if len(pairs) > limit:
        raise _fail(where, f"has {len(pairs)} entries; at most {limit} are allowed")
    return pairs


def parse_llm(value: Any, where: str) -> LlmSpec | None:
    """``None``, a model string, or an object with ``model`` and sampling options."""
    if value is None:
        return None
    if isinstance(value, str):
        return LlmSpec(model=_text(value, where))
    if not isinstance(value, Mapping):
        raise _fail(where, 'must be a model string ("openai/gpt-4o-mini") or an object')
    unknown = sorted(set(value) - _LLM_KEYS)
    if unknown:
        raise _fail(
            f"{where}.{unknown[0]}",
            f"is not an LLM option (allowed: {', '.join(sorted(_LLM_KEYS))}); the endpoint "
            "and key are set by the operator (AIPARTNERUPFLOW_CREWAI_BASE_URL, _API_KEY)",
        )
    model = _text(value["model"], f"{where}.model") if "model" in value else None
    options: dict[str, Any] = {}
    for key in ("temperature", "top_p"):
        if key in value:
            v = value[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise _fail(f"{where}.{key}", "must be a finite number")
            options[key] = float(v)
    for key in ("max_tokens", "seed"):
        if key in value:
            v = value[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise _fail(f"{where}.{key}", "must be a non-negative integer")
            options[key] = v
    return LlmSpec(model=model, options=options)


def _agent(key: str | None, raw: Any, where: str) -> AgentSpec:
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be an object with at least role and goal")
    unknown = sorted(set(raw) - _AGENT_KEYS)
    if unknown:
        raise _fail(
            f"{where}.{unknown[0]}",
            f"is not an agent field (known: {', '.join(sorted(_AGENT_KEYS))})",
        )
    role = _text(raw.get("role"), f"{where}.role")
    tools = raw.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools):
        raise _fail(f"{where}.tools", "must be a list of tool names")
    max_iter = raw.get("max_iter")
    if max_iter is not None and (
        isinstance(max_iter, bool) or not isinstance(max_iter, int) or not 1 <= max_iter <= 100
    ):
        raise _fail(f"{where}.max_iter", "must be an integer from 1 to 100")
    return AgentSpec(
        name=_text(raw.get("name"), f"{where}.name", required=False, default=key or role),
        role=role,
        goal=_text(raw.get("goal"), f"{where}.goal"),
        backstory=_text(
            raw.get("backstory"), f"{where}.backstory", required=False, default=f"You are {role}."
        ),
        llm=parse_llm(raw.get("llm"), f"{where}.llm"),
        tools=tuple(tools),
        max_iter=max_iter,
        allow_delegation=_bool(raw.get("allow_delegation"), f"{where}.allow_delegation"),
        verbose=_bool(raw.get("verbose"), f"{where}.verbose"),
    )


def _task(
    key: str | None, raw: Any, where: str, index: int, agents: dict[str, str], names: list[str]
) -> TaskSpec:
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be an object with at least a description")
    unknown = sorted(set(raw) - _TASK_KEYS)
    if unknown:
        raise _fail(
            f"{where}.{unknown[0]}", f"is not a task field (known: {', '.join(sorted(_TASK_KEYS))})"
        )
    agent_ref = raw.get("agent")
    if agent_ref is None:
        if len(set(agents.values())) != 1:
            raise _fail(f"{where}.agent", "is required when the crew has several agents")
        agent = next(iter(agents.values()))
    else:
        if not isinstance(agent_ref, str) or agent_ref not in agents:
            known = ", ".join(sorted(agents))
            raise _fail(f"{where}.agent", f"{agent_ref!r} is not an agent of the crew ({known})")
        agent = agents[agent_ref]
    context_raw = raw.get("context") or []
    if not isinstance(context_raw, list):
        raise _fail(f"{where}.context", "must be a list of earlier task names or indexes")
    context: list[int] = []
    for ref in context_raw:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < index:
            context.append(ref)
        elif isinstance(ref, str) and ref in names[:index]:
            context.append(names.index(ref))
        else:
            raise _fail(f"{where}.context", f"{ref!r} is not an earlier task of the crew")
    return TaskSpec(
        name=names[index],
        description=_text(raw.get("description"), f"{where}.description"),
        expected_output=_text(
            raw.get("expected_output"),
            f"{where}.expected_output",
            required=False,
            default=DEFAULT_EXPECTED_OUTPUT,
        ),
        agent=agent,
        context=tuple(context),
    )


def parse_crew(
    *,
    name: Any,
    agents: Any,
    tasks: Any,
    llm: Any = None,
    process: Any = None,
    verbose: Any = None,
    where: str = "params",
) -> CrewSpec:
    """Check a crew definition; every problem names its field (``params.tasks[1].agent``)."""
    crew_name = _text(name, f"{where}.name", required=False, default="crew")
    agent_specs: list[AgentSpec] = []
    by_ref: dict[str, str] = {}
    for i, (key, raw) in enumerate(_items(agents, f"{where}.agents", MAX_AGENTS)):
        spot = f"{where}.agents[{key!r}]" if key is not None else f"{where}.agents[{i}]"
        spec = _agent(key, raw, spot)
        if spec.name in {a.name for a in agent_specs}:
            raise _fail(f"{spot}.name", f"{spec.name!r} names two agents; give each its own name")
        agent_specs.append(spec)
        by_ref[spec.name] = spec.name
        by_ref.setdefault(spec.role, spec.name)
    task_pairs = _items(tasks, f"{where}.tasks", MAX_TASKS)
    names = []
    for i, (key, raw) in enumerate(task_pairs):
        given = raw.get("name") if isinstance(raw, Mapping) else None
        names.append(key or (given if isinstance(given, str) and given else f"task_{i}"))
    if len(set(names)) != len(names):
        raise _fail(f"{where}.tasks", "task names must be unique")
    task_specs = []
    for i, (key, raw) in enumerate(task_pairs):
        spot = f"{where}.tasks[{key!r}]" if key is not None else f"{where}.tasks[{i}]"
        task_specs.append(_task(key, raw, spot, i, by_ref, names))
    proc = "sequential" if process is None else process
    if proc not in _PROCESSES:
        raise _fail(f"{where}.process", f"must be one of {', '.join(_PROCESSES)}")
    return CrewSpec(
        name=crew_name,
        agents=tuple(agent_specs),
        tasks=tuple(task_specs),
        llm=parse_llm(llm, f"{where}.llm"),
        process=proc,
        verbose=_bool(verbose, f"{where}.verbose"),
    )


def placeholders(crew: CrewSpec) -> dict[str, str]:
    """Each ``{placeholder}`` the crew's texts use, mapped to the first field using it."""
    found: dict[str, str] = {}
    texts = [
        (f"agent {a.name!r} {label}", text)
        for a in crew.agents
        for label, text in (("role", a.role), ("goal", a.goal), ("backstory", a.backstory))
    ]
    texts += [
        (f"task {t.name!r} {label}", text)
        for t in crew.tasks
        for label, text in (("description", t.description), ("expected_output", t.expected_output))
    ]
    for where, text in texts:
        for name in _PLACEHOLDER.findall(text):
            found.setdefault(name, where)
    return found


def check_inputs(crew: CrewSpec, inputs: Mapping[str, Any]) -> None:
    """Fail, naming the placeholder, when the inputs do not fill every one the crew uses, or
    when a value is nested deeper than crewai can check."""
    for name, where in placeholders(crew).items():
        if name not in inputs:
            raise InputValidationError(
                f"inputs.{name}: the crew's {where} uses {{{name}}}, which the inputs do not "
                f"give; add {name!r} to the task's inputs"
            )
    stack: list[tuple[Any, int, str]] = [(v, 1, str(k)) for k, v in inputs.items()]
    while stack:
        value, depth, key = stack.pop()
        if depth > MAX_INPUT_DEPTH:
            raise InputValidationError(f"inputs.{key}: nested deeper than {MAX_INPUT_DEPTH} levels")
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1, key) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1, key) for v in value)
