"""A no-op executor for the CLI benchmark: ``apflow --plugin cli_noop_plugin ...``."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.registry import executor_register

__all__ = ["NoopExecutor"]


@executor_register(override=True)
class NoopExecutor(ExecutableTask):
    """Does nothing and returns an empty object."""

    id = "bench_noop"
    name = "No-op"
    description = "Do nothing (benchmarks)."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {}
