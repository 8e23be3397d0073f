"""The executor contract suite from aipartnerupflow-testing, run against ExampleExecutor."""

from __future__ import annotations

from typing import Any

import pytest

from aipartnerupflow.extensions.example.executor import ExampleExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase


class TestExampleExecutorContract(ExecutorContract):
    executor_class = ExampleExecutor
    # Modules that importing the executor must not import (the SDK it wraps).
    heavy_modules = ("example_sdk",)

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {"text": "ab", "repeat": 2}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [({}, "text"), ({"text": 3}, "text"), ({"text": "a", "repeat": 0}, "repeat")]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {"text": "x", "repeat": 20_000}

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"text": "x", "delay_seconds": 3600}
