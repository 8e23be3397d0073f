"""The system prompt of ``generate_executor``: the rules of a task tree and the executors
installed here, each with its input schema."""

from __future__ import annotations

import json
from typing import Any

from aipartnerupflow.core.executors.metadata import ExecutorInfo, executor_info, gate_problem
from aipartnerupflow.core.registry import ExecutorRegistry

__all__ = ["SELF_ID", "available_executors", "feedback", "system_prompt"]

SELF_ID = "generate_executor"
MAX_SCHEMA_CHARS = 4000

RULES = """\
You design task trees for aipartnerupflow, a task orchestration engine.
Answer with ONLY a JSON array of task objects (no prose, no code fences). Each task object has:
- "id": a short unique identifier (letters, digits, '-' or '_');
- "name": a short human-readable name;
- "parent_id": the id of its parent task; exactly ONE task (the root) has no parent_id, every
  other task has one, and every task must be reachable from the root;
- "dependencies": optional list of {"id": <task id>} that must complete first; a task receives
  the results of its dependencies in its inputs, keyed by the dependency's id;
- "schemas": {"method": <executor id>} naming one of the executors listed below, exactly;
- "inputs": an object matching that executor's input schema (required fields included);
- optionally "priority" (0-3, lower runs first), "retry": {"max_attempts": n},
  "timeout_seconds".
No dependency cycles. Use only the executors listed below; do not invent executor ids or
input fields. Prefer the fewest tasks that meet the requirement. The root usually collects the
results: make it depend on the tasks whose results it needs."""


def available_executors(
    registry: ExecutorRegistry, only: list[str] | None = None
) -> list[ExecutorInfo]:
    """Executors a generated tree may use: installed, not this one, and allowed to run
    (dangerous ones only once the operator enabled them)."""
    found = []
    for executor_id in registry.ids():
        if executor_id == SELF_ID or (only is not None and executor_id not in only):
            continue
        try:
            cls = registry.get(executor_id)
        except Exception:  # a broken plugin is not offered; validation names it if used
            continue
        if gate_problem(cls, executor_id) is not None:
            continue
        found.append(executor_info(cls, executor_id))
    return found


def _schema_text(schema: dict[str, Any]) -> str:
    trimmed = {k: v for k, v in schema.items() if k not in ("$schema", "title")}
    text = json.dumps(trimmed, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(text) > MAX_SCHEMA_CHARS:
        props = trimmed.get("properties")
        short = {
            "required": trimmed.get("required", []),
            "properties": {
                k: {"type": v.get("type"), "description": str(v.get("description", ""))[:120]}
                for k, v in (props.items() if isinstance(props, dict) else [])
                if isinstance(v, dict)
            },
        }
        text = json.dumps(short, ensure_ascii=False, separators=(",", ":"), default=str)
    return text


def system_prompt(executors: list[ExecutorInfo]) -> str:
    """The rules plus one section per executor (id, description, input schema)."""
    lines = [RULES, "", "Executors available:"]
    for info in executors:
        lines.append(f"\n## {info.id}: {info.name}\n{info.description}")
        lines.append(f"input schema: {_schema_text(info.input_schema)}")
    return "\n".join(lines)


def feedback(problems: list[str]) -> str:
    """The message sent back with an invalid answer."""
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"That task tree is not valid:\n{listed}\nReply with the whole corrected JSON array only."
    )
