"""Example executors: a small text pipeline that needs no network.

Load them into the CLI with ``apflow run flow --plugin examples.executors ...`` (from the
repository root) or import this module before running a tree from Python.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from aipartnerupflow import BaseTask, executor_register

__all__ = ["TextStats", "TopWords"]


@executor_register(override=True)
class TextStats(BaseTask):
    """Counts lines, words and characters of a text."""

    id = "text_stats_executor"
    name = "Text statistics"
    description = "Count the lines, words and characters of a text."
    inputs_schema = {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to measure"}},
        "required": ["text"],
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        text: str = inputs["text"]
        self.report_progress(0.5, "counting")
        await asyncio.sleep(0)
        return {
            "lines": len(text.splitlines()),
            "words": len(text.split()),
            "characters": len(text),
        }


@executor_register(override=True)
class TopWords(BaseTask):
    """The most frequent words of a text."""

    id = "top_words_executor"
    name = "Top words"
    description = "List the most frequent words of a text."
    inputs_schema = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
        "required": ["text"],
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        words = re.findall(r"[a-z']+", inputs["text"].lower())
        top = Counter(words).most_common(int(inputs.get("limit", 3)))
        return {"top": [{"word": w, "count": n} for w, n in top]}
