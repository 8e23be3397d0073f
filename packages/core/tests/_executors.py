"""Executors used by the core tests."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from aipartnerupflow.core.base_task import BaseTask
from aipartnerupflow.core.executor import ExecutableTask


class Recorder:
    """Shared record of what the test executors did."""

    starts: ClassVar[list[str]] = []
    ends: ClassVar[list[str]] = []
    inputs: ClassVar[dict[str, dict[str, Any]]] = {}
    running: ClassVar[int] = 0
    peak: ClassVar[int] = 0
    calls: ClassVar[dict[str, int]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.starts, cls.ends, cls.inputs = [], [], {}
        cls.running = cls.peak = 0
        cls.calls = {}


class Noop(ExecutableTask):
    id = "test_noop"
    name = "No-op"
    description = "Returns its inputs' echo field."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"echo": inputs.get("echo")}


class Track(ExecutableTask):
    """Records start/end order, the inputs it saw, and concurrency."""

    id = "test_track"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        Recorder.starts.append(ctx.name)
        Recorder.inputs[ctx.name] = inputs
        Recorder.calls[ctx.name] = Recorder.calls.get(ctx.name, 0) + 1
        Recorder.running += 1
        Recorder.peak = max(Recorder.peak, Recorder.running)
        try:
            await asyncio.sleep(float(inputs.get("sleep", 0)))
        finally:
            Recorder.running -= 1
        Recorder.ends.append(ctx.name)
        if inputs.get("fail"):
            raise RuntimeError(f"{ctx.name} was told to fail")
        return {"name": ctx.name, "value": inputs.get("value")}


class Flaky(ExecutableTask):
    """Fails until its attempt reaches ``succeed_on``."""

    id = "test_flaky"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        if ctx.attempt < int(inputs["succeed_on"]):
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return {"attempt": ctx.attempt}


class Sleeper(ExecutableTask):
    id = "test_sleep"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        await asyncio.sleep(float(inputs.get("seconds", 0.1)))
        return {"slept": inputs.get("seconds", 0.1)}


class ExplicitFailure(ExecutableTask):
    id = "test_explicit_failure"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        if inputs.get("style") == "success":
            return {"success": False, "message": "remote said no"}
        return {"status": "failed", "error": "quota exceeded"}


class Unserialisable(ExecutableTask):
    id = "test_unserialisable"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"when": object()}


class Schema(BaseTask):
    """Requires a string ``url`` and an integer ``count``."""

    id = "test_schema"
    inputs_schema = {
        "type": "object",
        "properties": {"url": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["url"],
    }

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"url": inputs["url"], "count": inputs.get("count")}


class WithParams(BaseTask):
    id = "test_params"

    def __init__(self, greeting: str = "hello", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.greeting = greeting

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return f"{self.greeting} {inputs.get('who', 'world')}"


class Progress(BaseTask):
    id = "test_progress"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        for step in (0.25, 0.5, 1.0):
            self.report_progress(step, f"step {step}")
            await asyncio.sleep(0)
        return "done"


ALL_TEST_EXECUTORS: list[type[ExecutableTask]] = [
    Noop,
    Track,
    Flaky,
    Sleeper,
    ExplicitFailure,
    Unserialisable,
    Schema,
    WithParams,
    Progress,
]
