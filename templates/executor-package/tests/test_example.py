"""Behaviour of the example executor itself (the contract suite is in test_contract.py)."""

from __future__ import annotations

import pytest

from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.extensions.example.executor import ExampleExecutor
from aipartnerupflow.testing.fixtures import RunTree


async def test_repeats_text_with_separator() -> None:
    result = await ExampleExecutor(separator="-").execute({"text": "ab", "repeat": 3})
    assert result == {"text": "ab-ab-ab", "length": 8}


async def test_repeat_defaults_to_one() -> None:
    assert await ExampleExecutor().execute({"text": "x"}) == {"text": "x", "length": 1}


async def test_too_long_a_result_fails() -> None:
    with pytest.raises(ValueError, match="over max_length"):
        await ExampleExecutor(max_length=5).execute({"text": "abc", "repeat": 2})


def test_entry_point_is_installed() -> None:
    registry = ExecutorRegistry()
    assert "example_executor" in registry.ids()
    assert registry.get("example_executor") is ExampleExecutor


async def test_runs_in_a_task_tree(run_tree: RunTree) -> None:
    result = await run_tree(
        [
            {
                "id": "t1",
                "name": "repeat",
                "schemas": {"method": "example_executor"},
                "params": {"separator": " "},
                "inputs": {"text": "hi", "repeat": 2},
            }
        ]
    )
    assert result.status == "completed"
    assert result.task("t1").result == {"text": "hi hi", "length": 5}
