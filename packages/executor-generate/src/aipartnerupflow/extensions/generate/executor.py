"""``generate_executor``: a requirement in natural language becomes a task tree that passes
the engine's full validation; optionally the tree is run.

Importing this module does not import LiteLLM; the first task does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.errors import InputValidationError, PermanentError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.secrets import (
    SecretScrubber,
    install_log_scrubbing,
    scrubbing,
)
from aipartnerupflow.core.registry import ExecutorRegistry, get_executor_registry
from aipartnerupflow.extensions.generate.generation import generate_tree
from aipartnerupflow.extensions.llm import LLMSettings, Request, caller_for, make_request

__all__ = ["DEFAULT_MAX_ROUNDS", "INPUT_SCHEMA", "GenerateExecutor", "llm_request"]

DEFAULT_MAX_ROUNDS = 3
MAX_ROUNDS = 10
MAX_REQUIREMENT_CHARS = 50_000

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "generate_executor inputs",
    "type": "object",
    "required": ["requirement"],
    "properties": {
        "requirement": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_REQUIREMENT_CHARS,
            "description": "What the tree must do, in natural language.",
        },
        "model": {
            "type": "string",
            "minLength": 1,
            "description": "LiteLLM model string (default: AIPARTNERUPFLOW_LLM_MODEL).",
        },
        "llm_provider": {
            "type": "string",
            "description": "The original project's provider (openai, anthropic …), prefixed to "
            "a model given without one.",
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0.2},
        "max_tokens": {"type": "integer", "minimum": 1, "default": 4000},
        "max_rounds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ROUNDS,
            "default": DEFAULT_MAX_ROUNDS,
            "description": "Answers asked for at most: an invalid tree is sent back with its "
            "validation errors until then.",
        },
        "executors": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Executor ids the tree may use (default: every installed one that "
            "may run here).",
        },
        "run": {
            "type": "boolean",
            "default": False,
            "description": "Also run the generated tree and include its outcome.",
        },
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "stream": {"type": "boolean", "default": False},
        "checkpoint": {"type": "boolean", "default": True},
        "api_key": {"type": "string", "minLength": 1},
        "api_key_env": {"type": "string", "minLength": 1},
        "api_base": {"type": "string", "minLength": 1},
        "user_id": {
            "type": ["string", "null"],
            "description": "Owner of the generated tasks (the running task's user wins).",
        },
    },
    "additionalProperties": True,
}

_LLM_KEYS = ("model", "api_key", "api_key_env", "api_base", "timeout", "stream", "checkpoint")


def llm_request(inputs: dict[str, Any], settings: LLMSettings) -> Request:
    """The provider request of a generation (messages are built per round)."""
    llm_inputs = {k: inputs[k] for k in _LLM_KEYS if k in inputs}
    model = llm_inputs.get("model") or settings.model
    provider = inputs.get("llm_provider")
    if isinstance(model, str) and isinstance(provider, str) and provider and "/" not in model:
        llm_inputs["model"] = f"{provider}/{model}"
    llm_inputs["temperature"] = inputs.get("temperature", 0.2)
    llm_inputs["max_tokens"] = inputs.get("max_tokens", 4000)
    llm_inputs["prompt"] = "requirement"  # replaced: generation builds its own messages
    try:
        return make_request(llm_inputs, settings)
    except InputValidationError as exc:
        raise InputValidationError(str(exc).replace("llm_executor", "generate_executor")) from None


class GenerateExecutor(ExecutableTask):
    """Asks a model for a task tree meeting a requirement, validates it with the engine's
    own checks (feeding errors back), and returns it; runs it when asked."""

    id: ClassVar[str] = "generate_executor"
    name: ClassVar[str] = "Generate task tree"
    description: ClassVar[str] = (
        "Turn a requirement in natural language into a task tree (JSON array) that uses the "
        "executors installed here and passes full validation; optionally run it."
    )
    tags: ClassVar[list[str]] = ["llm", "ai", "planning"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Plan a health check",
            "inputs": {
                "requirement": "Fetch https://example.com/health and report whether it is up",
                "model": "openai/gpt-4o-mini",
            },
        }
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA
    default_timeout: ClassVar[float | None] = 1800.0

    def __init__(self, **params: Any) -> None:
        pass

    def registry(self) -> ExecutorRegistry:
        """The executors a generated tree may use (the process-wide registry)."""
        return get_executor_registry()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Generate (and maybe run) the tree; raises on failure."""
        ctx = current_task_context()
        scrubber = ctx.secrets if ctx is not None else SecretScrubber()
        if ctx is None:  # outside the engine: scrub this call's log records ourselves
            install_log_scrubbing()
        with scrubbing(scrubber):
            try:
                result = await self._generate(inputs, ctx, scrubber)
            except Exception as exc:
                clean = scrubber.text(str(exc))
                if clean != str(exc):
                    exc.args = (clean, *exc.args[1:])
                raise
            cleaned: dict[str, Any] = scrubber.data(result)
            return cleaned

    async def _generate(
        self, inputs: dict[str, Any], ctx: Any, scrubber: SecretScrubber
    ) -> dict[str, Any]:
        requirement = inputs.get("requirement")
        if not isinstance(requirement, str) or not requirement.strip():
            raise InputValidationError("generate_executor inputs: 'requirement' is required")
        if "\x00" in requirement:
            raise InputValidationError("generate_executor inputs: 'requirement' contains NUL")
        rounds = inputs.get("max_rounds", DEFAULT_MAX_ROUNDS)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
            raise InputValidationError(
                f"generate_executor inputs: 'max_rounds' must be an integer from 1 to {MAX_ROUNDS}"
            )
        only = inputs.get("executors")
        if only is not None and (
            not isinstance(only, list) or not all(isinstance(i, str) for i in only)
        ):
            raise InputValidationError(
                "generate_executor inputs: 'executors' must be a list of executor ids"
            )
        settings = LLMSettings.get()
        if settings.api_key:
            scrubber.add(settings.api_key)
        if isinstance(inputs.get("api_key"), str):
            scrubber.add(inputs["api_key"])
        request = llm_request(inputs, settings)
        scrubber.add(*request.secrets)
        user_id = ctx.user_id if ctx is not None and ctx.user_id else inputs.get("user_id")
        caller = caller_for(settings, scrubber, checkpoint=request.checkpoint)
        registry = self.registry()
        generated = await generate_tree(
            requirement,
            request,
            caller,
            registry,
            max_rounds=rounds,
            user_id=user_id if isinstance(user_id, str) else None,
            executors=only,
        )
        result: dict[str, Any] = {
            "success": True,
            "status": "completed",
            "tasks": generated.tasks,
            "count": len(generated.tasks),
            "root_id": next(t["id"] for t in generated.tasks if not t.get("parent_id")),
            "rounds": generated.rounds,
            "problems": generated.problems_seen,
            "model": request.model,
            "usage": dict(caller.usage),
            "cost": caller.cost,
            "run": None,
        }
        if inputs.get("run") is True:
            result["run"] = await self._run(generated.tasks, registry)
        return result

    async def _run(self, tasks: list[dict[str, Any]], registry: ExecutorRegistry) -> dict[str, Any]:
        from aipartnerupflow.core.manager import TaskManager
        from aipartnerupflow.core.storage import get_default_session

        manager = TaskManager(get_default_session(), registry=registry)
        try:
            tree = await manager.run_tasks(tasks)
        finally:
            await manager.close(close_storage=False)
        outcome: dict[str, Any] = tree.to_dict()
        if tree.status != "completed":
            failed = [f"{t.name!r}: {t.error}" for t in tree.tasks if t.status != "completed"]
            raise PermanentError(
                f"the generated tree {tree.root_id} ran and ended {tree.status}: "
                + "; ".join(failed)[:2000]
            )
        return outcome
