"""``ExampleExecutor``: repeats a text; shows the shape every executor follows."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from aipartnerupflow.core.base_task import BaseTask

__all__ = ["ExampleExecutor"]


class ExampleExecutor(BaseTask):
    """Repeat ``inputs["text"]`` ``inputs["repeat"]`` times, joined by the ``separator`` param.

    Params (the task's ``params``): ``separator`` (default ``""``) and ``max_length`` (default
    10 000): a longer result fails the task.
    """

    id = "example_executor"
    name = "Example executor"
    description = "Repeats a text: the template for new executor packages."
    tags: ClassVar[list[str]] = ["example"]
    examples: ClassVar[list[dict[str, Any]]] = [
        {"name": "three times", "inputs": {"text": "hi", "repeat": 3}},
    ]
    inputs_schema: ClassVar[dict[str, Any] | type | None] = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "the text to repeat"},
            "repeat": {"type": "integer", "minimum": 1, "default": 1},
            "delay_seconds": {"type": "number", "minimum": 0, "default": 0},
        },
        "required": ["text"],
        "additionalProperties": False,
    }

    def __init__(self, separator: str = "", max_length: int = 10_000, **kwargs: Any) -> None:
        super().__init__(separator=separator, max_length=max_length, **kwargs)
        self.separator = separator
        self.max_length = max_length

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Return the repeated text and its length (JSON-serialisable); raise to fail."""
        # A real executor imports its SDK here (`import somesdk`), never at module level, so
        # that listing and loading the entry point stay cheap.
        delay = float(inputs.get("delay_seconds", 0))
        if delay:
            self.report_progress(0.0, f"waiting {delay} s")
            await asyncio.sleep(delay)  # cancellation interrupts this
        text, repeat = str(inputs["text"]), int(inputs.get("repeat", 1))
        length = len(text) * repeat + len(self.separator) * (repeat - 1)
        if length > self.max_length:
            raise ValueError(f"the result would be {length} characters, over max_length")
        result = self.separator.join([text] * repeat)
        self.report_progress(1.0, "done")
        return {"text": result, "length": len(result)}
