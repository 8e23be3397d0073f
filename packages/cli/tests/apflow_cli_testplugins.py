"""Executors for the CLI tests, loaded with ``--plugin apflow_cli_testplugins``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aipartnerupflow.core.base_task import BaseTask
from aipartnerupflow.core.registry import executor_register

__all__ = [
    "EchoExecutor",
    "FailExecutor",
    "GuardedExecutor",
    "NeedsParamsExecutor",
    "SlowExecutor",
    "StubbornExecutor",
]


@executor_register(override=True)
class EchoExecutor(BaseTask):
    """Returns its inputs."""

    id = "cli_echo"
    name = "Echo"
    description = "Return the inputs unchanged."
    inputs_schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"echo": inputs}


@executor_register(override=True)
class SlowExecutor(BaseTask):
    """Sleeps, reporting progress; touches ``started_file`` when it begins."""

    id = "cli_slow"
    name = "Slow"
    description = "Sleep for `seconds`, reporting progress."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        marker = inputs.get("started_file")
        if marker:
            await asyncio.to_thread(Path(marker).write_text, "started")
        seconds = float(inputs.get("seconds", 1.0))
        steps = 20
        for i in range(steps):
            await asyncio.sleep(seconds / steps)
            self.report_progress((i + 1) / steps, f"step {i + 1}")
        return {"slept": seconds}


@executor_register(override=True)
class FailExecutor(BaseTask):
    """Always fails."""

    id = "cli_fail"
    name = "Fail"
    description = "Raise an error."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        raise RuntimeError("boom")


@executor_register(override=True)
class NeedsParamsExecutor(BaseTask):
    """Cannot be built without a parameter."""

    id = "cli_needs_params"
    description = "Needs a constructor parameter."

    def __init__(self, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"token_length": len(self.token)}


@executor_register(override=True)
class GuardedExecutor(BaseTask):
    """Needs params and is dangerous, but declares its metadata on the class."""

    id = "cli_guarded"
    description = "Declares its schemas on the class."
    dangerous = True
    max_concurrency = 2
    input_schema = {
        "type": "object",
        "properties": {"cmd": {"type": "string"}},
        "required": ["cmd"],
    }
    params_schema = {"type": "object", "properties": {"token": {"type": "string"}}}

    def __init__(self, token: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"cmd": inputs["cmd"]}


@executor_register(override=True)
class StubbornExecutor(BaseTask):
    """Takes ``seconds`` more to end when cancelled; touches ``started_file`` when it begins."""

    id = "cli_stubborn"
    description = "Sleep; when cancelled, sleep again before ending."

    async def execute(self, inputs: dict[str, Any]) -> Any:
        await asyncio.to_thread(Path(inputs["started_file"]).write_text, "started")
        seconds = float(inputs.get("seconds", 5.0))
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(seconds)
            raise
        return {"slept": 60}
