"""No-op executors the benchmarks load into worker processes."""

from __future__ import annotations

from typing import Any

from aipartnerupflow import ExecutableTask, executor_register


@executor_register(override=True)
class BenchNoop(ExecutableTask):
    id = "bench_noop"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return None
