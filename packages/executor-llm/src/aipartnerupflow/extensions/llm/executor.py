"""``llm_executor``: one chat completion through LiteLLM (any provider).

Importing this module does not import LiteLLM; the first task does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.errors import PermanentError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.secrets import (
    SecretScrubber,
    install_log_scrubbing,
    scrubbing,
)
from aipartnerupflow.extensions.llm.answers import JsonProblem, parse_json_answer
from aipartnerupflow.extensions.llm.calls import Caller
from aipartnerupflow.extensions.llm.checkpoints import CheckpointStore
from aipartnerupflow.extensions.llm.inputs import INPUT_SCHEMA, Request, make_request
from aipartnerupflow.extensions.llm.settings import LLMSettings

__all__ = ["LLMExecutor", "caller_for"]

REPAIR_PROMPT = (
    "Your answer is not the JSON that was asked for:\n{problems}\n"
    "Reply again with only the corrected JSON, no explanations and no code fences."
)


def caller_for(settings: LLMSettings, scrubber: SecretScrubber, *, checkpoint: bool) -> Caller:
    """A :class:`Caller` for the running task (checkpointed when enabled)."""
    ctx = current_task_context()
    store = None
    if checkpoint and settings.checkpoints and ctx is not None:
        store = CheckpointStore.at(settings.checkpoint_file(), settings.checkpoint_ttl_seconds)
    return Caller(ctx=ctx, scrubber=scrubber, checkpoints=store)


class LLMExecutor(ExecutableTask):
    """Sends templated messages to a model and returns its answer (text, or JSON checked
    against a schema), with token usage and cost."""

    id: ClassVar[str] = "llm_executor"
    name: ClassVar[str] = "LLM"
    description: ClassVar[str] = (
        "Ask a language model (any LiteLLM provider: OpenAI, Anthropic, Gemini, Ollama, "
        "OpenAI-compatible servers …). Prompts are templates over the inputs and dependency "
        "results; the answer is text, or JSON validated against a JSON Schema."
    )
    tags: ClassVar[list[str]] = ["llm", "ai"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Summarise a dependency's result",
            "inputs": {
                "model": "openai/gpt-4o-mini",
                "system_prompt": "You summarise documents in three sentences.",
                "prompt": "Summarise: {{ deps['fetch'].body }}",
            },
        },
        {
            "name": "Extract JSON",
            "inputs": {
                "model": "anthropic/claude-sonnet-4-5",
                "prompt": "Name and age in: {{ text }}",
                "text": "Ada, 36",
                "json_schema": {
                    "type": "object",
                    "required": ["name", "age"],
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                },
            },
        },
    ]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA
    default_timeout: ClassVar[float | None] = 900.0

    def __init__(self, **params: Any) -> None:
        # The original project passed task params as keyword arguments; none are used here.
        pass

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Make the call (and at most one repair call for JSON); raises on failure."""
        ctx = current_task_context()
        scrubber = ctx.secrets if ctx is not None else SecretScrubber()
        if ctx is None:  # outside the engine: scrub this call's log records ourselves
            install_log_scrubbing()
        with scrubbing(scrubber):
            try:
                settings = LLMSettings.get()
                if settings.api_key:
                    scrubber.add(settings.api_key)
                if isinstance(inputs.get("api_key"), str):
                    scrubber.add(inputs["api_key"])
                request = make_request(
                    inputs,
                    settings,
                    dependency_results=ctx.dependency_results if ctx is not None else None,
                )
                scrubber.add(*request.secrets)
                caller = caller_for(settings, scrubber, checkpoint=request.checkpoint)
                result = await self._run(request, caller)
            except Exception as exc:
                clean = scrubber.text(str(exc))
                if clean != str(exc):
                    exc.args = (clean, *exc.args[1:])
                raise
            cleaned: dict[str, Any] = scrubber.data(result)
            return cleaned

    async def _run(self, request: Request, caller: Caller) -> dict[str, Any]:
        messages = list(request.messages)
        answer = await caller.call(
            request.model,
            messages,
            request.params,
            api_key=request.api_key,
            stream=request.stream,
            timeout=request.timeout,
        )
        value: Any = None
        repaired = False
        if request.json_mode:
            try:
                value = parse_json_answer(answer.content, request.json_schema)
            except JsonProblem as first:
                messages += [
                    {"role": "assistant", "content": answer.content or ""},
                    {
                        "role": "user",
                        "content": REPAIR_PROMPT.replace(
                            "{problems}", "\n".join(f"- {p}" for p in first.problems)
                        ),
                    },
                ]
                answer = await caller.call(
                    request.model,
                    messages,
                    request.params,
                    api_key=request.api_key,
                    stream=request.stream,
                    timeout=request.timeout,
                )
                try:
                    value = parse_json_answer(answer.content, request.json_schema)
                except JsonProblem as second:
                    raise PermanentError(
                        "the model's answer is not the JSON asked for, also after one repair "
                        f"request: {second} (simplify the schema or the prompt, or use a "
                        "stronger model)"
                    ) from None
                repaired = True
        return {
            "success": True,
            "content": answer.content,
            "json": value,
            "tool_calls": answer.tool_calls,
            "finish_reason": answer.finish_reason,
            "model": answer.model or request.model,
            "usage": dict(caller.usage),
            "cost": caller.cost,
            "calls": caller.paid_calls,
            "reused_calls": caller.reused_calls,
            "repaired": repaired,
            "is_stream": request.stream,
            "data": answer.response,
        }
