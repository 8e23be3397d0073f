"""``crewai_executor``: :class:`CrewManager` runs one crew of agents defined in JSON.

Importing this module does not import crewai; the first run does (in a worker thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.extensions.crewai.cancellation import Cancellation
from aipartnerupflow.extensions.crewai.settings import CrewaiSettings
from aipartnerupflow.extensions.crewai.spec import CrewSpec, check_inputs, parse_crew

__all__ = ["CREW_PARAMS_SCHEMA", "CrewManager", "crew_inputs"]

_LLM = {
    "description": 'A model ("openai/gpt-4o-mini") or {"model", "temperature", "max_tokens", '
    '"top_p", "seed"}; the endpoint and key are the operator\'s settings.',
    "anyOf": [{"type": "string", "minLength": 1}, {"type": "object"}],
}
_LIST_OR_MAP = {"anyOf": [{"type": "array", "minItems": 1}, {"type": "object", "minProperties": 1}]}

CREW_PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "Name of the crew."},
        "agents": {
            **_LIST_OR_MAP,
            "description": "Agents: {role, goal, backstory?, llm?, tools?, max_iter?, name?}, "
            "as a list or an object of named agents.",
        },
        "tasks": {
            **_LIST_OR_MAP,
            "description": "Tasks, run in order: {description, agent?, expected_output?, "
            "context?, name?}; {placeholders} are filled from the inputs.",
        },
        "works": {
            "type": "object",
            "description": "The original project's form: {agents: ..., tasks: ...}.",
        },
        "llm": _LLM,
        "model": {"type": "string", "minLength": 1, "description": "Alias of llm (a model)."},
        "process": {"enum": ["sequential"]},
        "verbose": {"type": "boolean"},
        "inputs": {"type": "object", "description": "Default inputs (task inputs win)."},
    },
    "additionalProperties": False,
}


def crew_inputs(inputs: Any, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values crewai interpolates into descriptions: defaults, then the task's inputs."""
    if not isinstance(inputs, Mapping):
        raise InputValidationError(
            f"inputs must be an object (a dict of values for the {{placeholders}}), not "
            f"{type(inputs).__name__}"
        )
    merged = {**(defaults or {}), **inputs}
    bad = [k for k in merged if not isinstance(k, str)]
    if bad:
        raise InputValidationError(f"inputs: key {bad[0]!r} must be a string")
    return merged


class CrewManager(ExecutableTask):
    """Runs a crew of agents (crewai) over its tasks, in order; the task fails if the crew does.

    The result holds each task's output, the final output (also parsed as ``json`` when it is
    a JSON object or list) and the token usage. A crew error, or an agent ending a task
    without an answer, fails the task; cancellation stops it between steps.
    """

    id = "crewai_executor"
    name = "CrewAI crew"
    description = "Runs a crew of LLM agents (crewai) over a list of tasks."
    tags = ["llm", "agents", "crewai"]
    examples = [
        {
            "params": {
                "name": "Analysis Crew",
                "agents": [{"role": "Analyst", "goal": "Analyze data"}],
                "tasks": [{"description": "Analyze {topic}", "agent": "Analyst"}],
            },
            "inputs": {"topic": "sales"},
        }
    ]
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "description": "Values for the {placeholders} of descriptions, goals and expected "
        "outputs; dependency results arrive under their task ids.",
        "additionalProperties": True,
    }
    params_schema: ClassVar[dict[str, Any] | None] = CREW_PARAMS_SCHEMA
    default_timeout: ClassVar[float | None] = 1800.0

    def __init__(
        self,
        name: str | None = None,
        agents: Any = None,
        tasks: Any = None,
        *,
        works: Mapping[str, Any] | None = None,
        llm: Any = None,
        model: str | None = None,
        process: str | None = None,
        verbose: bool | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        if works is not None:
            if not isinstance(works, Mapping):
                raise InputValidationError("params.works must be an object {agents, tasks}")
            agents = works.get("agents") if agents is None else agents
            tasks = works.get("tasks") if tasks is None else tasks
        if agents is None or tasks is None:
            missing = "agents" if agents is None else "tasks"
            raise InputValidationError(
                f"params.{missing}: a crew needs agents and tasks, e.g. agents=[{{'role': "
                "'Analyst', 'goal': 'Analyze data'}], tasks=[{'description': 'Analyze input', "
                "'agent': 'Analyst'}]"
            )
        self.spec: CrewSpec = parse_crew(
            name=name,
            agents=agents,
            tasks=tasks,
            llm=llm if llm is not None else model,
            process=process,
            verbose=verbose,
        )
        self.default_inputs = dict(inputs or {})
        self._cancelled = Cancellation()

    @property
    def crew_name(self) -> str:
        return self.spec.name

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the crew with ``inputs`` interpolated; the result (raises on failure)."""
        from aipartnerupflow.extensions.crewai.runtime import run_crew

        values = crew_inputs(inputs, self.default_inputs)
        check_inputs(self.spec, values)
        self._cancelled.clear()
        return await run_crew(self.spec, values, CrewaiSettings.get(), self._cancelled)

    async def cancel(self) -> None:
        """Stop the crew at its next step."""
        self._cancelled.set()
