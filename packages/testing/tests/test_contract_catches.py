"""The contract fails executors that break it (run in a nested pytest)."""

from __future__ import annotations

import pytest

BROKEN = """
import asyncio
import pytest
from aipartnerupflow import ExecutableTask
from aipartnerupflow.testing.contract import ExecutorContract


class Leaky(ExecutableTask):
    id = "Leaky-Executor"
    name = "Leaky"
    description = "Breaks the contract."

    def get_input_schema(self):
        return {"type": "object", "properties": {"n": {"type": "wrong"}}}

    async def execute(self, inputs):
        raise RuntimeError("token=hunter2-secret was rejected")


class Unserialisable(ExecutableTask):
    id = "unserialisable"
    name = "Unserialisable"
    description = "Returns a set."

    async def execute(self, inputs):
        return {"values": {1, 2}}


class TestLeaky(ExecutorContract):
    executor_class = Leaky
    entry_point = False
    secrets = ("hunter2-secret",)

    @pytest.fixture
    def valid_inputs(self):
        return {}


class TestUnserialisable(ExecutorContract):
    executor_class = Unserialisable
    entry_point = False
    heavy_modules = ("json",)
    import_target = "json:dumps"

    @pytest.fixture
    def valid_inputs(self):
        return {}
"""


def test_broken_executors_fail_the_contract(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN)
    result = pytester.runpytest_subprocess("-p", "asyncio", "-o", "asyncio_mode=strict", "-rf")
    failed = {
        line.split(" ")[1].split("::", 1)[1]
        for line in result.outlines
        if line.startswith("FAILED ")
    }
    assert failed == {
        "TestLeaky::test_identity",
        "TestLeaky::test_input_schema_is_valid_json_schema",
        "TestLeaky::test_valid_inputs_complete",
        "TestLeaky::test_no_secrets_in_results_errors_or_logs",
        "TestUnserialisable::test_valid_inputs_complete",
        "TestUnserialisable::test_lazy_import",
    }, "\n".join(result.outlines)
