"""``batch_crewai_executor``: :class:`BatchManager` runs several crews as one atomic batch.

The crews run one after another; their results are merged only when every crew succeeded.
If any fails, the whole batch fails and no partial result is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aipartnerupflow.core.errors import (
    ExecutorError,
    InputValidationError,
    PermanentError,
    RetryableError,
    TaskCancelledError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.extensions.crewai.cancellation import Cancellation
from aipartnerupflow.extensions.crewai.crew_manager import crew_inputs
from aipartnerupflow.extensions.crewai.settings import CrewaiSettings
from aipartnerupflow.extensions.crewai.spec import CrewSpec, check_inputs, parse_crew

__all__ = ["BatchFailedError", "BatchManager"]

MAX_WORKS = 50


class BatchFailedError(ExecutorError):
    """A crew of the batch failed; the batch reports nothing else."""


class _PermanentBatchFailure(BatchFailedError, PermanentError):
    pass


class _RetryableBatchFailure(BatchFailedError, RetryableError):
    pass


def _batch_error(message: str, cause: ExecutorError) -> BatchFailedError:
    """The batch's error, retryable or permanent as the crew's was (a retry reruns all)."""
    if isinstance(cause, PermanentError):
        return _PermanentBatchFailure(message)
    if isinstance(cause, RetryableError):
        return _RetryableBatchFailure(message, retry_after=cause.retry_after)
    return BatchFailedError(message)


class BatchManager(ExecutableTask):
    """Runs the crews of ``works`` in order and merges their results (all or nothing)."""

    id = "batch_crewai_executor"
    name = "CrewAI batch"
    description = "Runs several crewai crews one after another as one atomic batch."
    tags = ["llm", "agents", "crewai", "batch"]
    examples = [
        {
            "params": {
                "name": "Batch Analysis",
                "works": {
                    "data_collection": {
                        "agents": [{"role": "Collector", "goal": "Collect data"}],
                        "tasks": [{"description": "Collect data", "agent": "Collector"}],
                    },
                    "data_analysis": {
                        "agents": [{"role": "Analyst", "goal": "Analyze data"}],
                        "tasks": [{"description": "Analyze data", "agent": "Analyst"}],
                    },
                },
            },
            "inputs": {},
        }
    ]
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "description": "Values for the crews' {placeholders}; each crew gets a copy.",
        "additionalProperties": True,
    }
    params_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "Identifier of the batch (for results)."},
            "name": {"type": "string", "minLength": 1},
            "works": {
                "type": "object",
                "minProperties": 1,
                "description": "Crews by name: {name: {agents, tasks, llm?, ...}}, run in order.",
            },
            "llm": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "object"}]},
            "model": {"type": "string", "minLength": 1},
            "inputs": {"type": "object"},
        },
        "required": ["works"],
        "additionalProperties": False,
    }
    default_timeout: ClassVar[float | None] = 3600.0

    def __init__(
        self,
        id: str | None = None,
        name: str | None = None,
        works: Mapping[str, Any] | None = None,
        *,
        llm: Any = None,
        model: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(works, Mapping) or not works:
            raise InputValidationError(
                "params.works must be a non-empty object of crews: {name: {agents: [...], "
                "tasks: [...]}}"
            )
        if len(works) > MAX_WORKS:
            raise InputValidationError(f"params.works has {len(works)} crews; at most {MAX_WORKS}")
        self.batch_id = id
        self.batch_name = name or id or "batch"
        self.crews: dict[str, CrewSpec] = {}
        for work_name, work in works.items():
            where = f"params.works[{work_name!r}]"
            if not isinstance(work, Mapping):
                raise InputValidationError(f"{where} must be an object {{agents, tasks}}")
            unknown = sorted(set(work) - {"agents", "tasks", "llm", "model", "process", "verbose"})
            if unknown:
                raise InputValidationError(f"{where}.{unknown[0]} is not a crew field")
            crew_llm = work.get("llm", work.get("model"))
            self.crews[str(work_name)] = parse_crew(
                name=str(work_name),
                agents=work.get("agents"),
                tasks=work.get("tasks"),
                llm=crew_llm if crew_llm is not None else (llm if llm is not None else model),
                process=work.get("process"),
                verbose=work.get("verbose"),
                where=where,
            )
        self.default_inputs = dict(inputs or {})
        self._cancelled = Cancellation()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run every crew in order; merged results, or raise naming the crew that failed."""
        from aipartnerupflow.extensions.crewai.runtime import run_crew

        values = crew_inputs(inputs, self.default_inputs)
        for crew in self.crews.values():  # every crew checked before the first one runs
            check_inputs(crew, values)
        settings = CrewaiSettings.get()
        self._cancelled.clear()
        results: dict[str, dict[str, Any]] = {}
        for index, (work_name, crew) in enumerate(self.crews.items()):
            if self._cancelled.is_set():
                raise TaskCancelledError(
                    f"batch {self.batch_name!r} was cancelled before crew {work_name!r}"
                )
            try:
                results[work_name] = await run_crew(crew, dict(values), settings, self._cancelled)
            except ExecutorError as exc:
                done = ", ".join(results) or "none"
                raise _batch_error(
                    f"batch {self.batch_name!r} failed at crew {work_name!r} ({index + 1} of "
                    f"{len(self.crews)}): {exc}. Nothing is reported for the crews that had "
                    f"finished ({done}): a batch succeeds whole or not at all.",
                    exc,
                ) from exc
            if self.context is not None:
                self.context.report_progress(
                    (index + 1) / len(self.crews), f"crew {work_name!r} done"
                )
        usage: dict[str, int] = {}
        for result in results.values():
            for key, value in result["token_usage"].items():
                usage[key] = usage.get(key, 0) + value
        merged: dict[str, Any] = {
            "status": "success",
            "name": self.batch_name,
            "result": {name: r["result"] for name, r in results.items()},
            "works": results,
            "token_usage": usage,
        }
        if self.batch_id is not None:
            merged["id"] = self.batch_id
        return merged

    async def cancel(self) -> None:
        """Stop the running crew at its next step and run no further crew."""
        self._cancelled.set()
