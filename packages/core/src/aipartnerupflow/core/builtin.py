"""Built-in executors with no third-party dependencies."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.base_task import BaseTask

__all__ = ["AggregateResultsExecutor"]


class AggregateResultsExecutor(BaseTask):
    """Collects the results of the task's dependencies into one result."""

    id = "aggregate_results_executor"
    name = "Aggregate results"
    description = "Merge the results of this task's dependencies into one object keyed by task id."
    tags = ["core", "aggregate"]
    inputs_schema = {"type": "object"}

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        ctx = self.context
        results = dict(ctx.dependency_results) if ctx else {}
        return {"results": results, "count": len(results)}
