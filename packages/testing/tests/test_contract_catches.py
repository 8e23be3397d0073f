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


class Closed(ExecutableTask):
    # Its schema forbids extra keys: it breaks as soon as its task has a dependency.

    id = "closed"
    name = "Closed"
    description = "additionalProperties: false."
    input_schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "additionalProperties": False,
    }

    async def execute(self, inputs):
        return {"n": inputs.get("n", 0)}


class Sloppy(ExecutableTask):
    # Permanent errors not marked so, leaks a process and a task, ignores caps and policy.

    id = "sloppy"
    name = "Sloppy"
    description = "Breaks the new contract tests."

    async def execute(self, inputs):
        mode = inputs.get("mode")
        if mode == "permanent":
            raise RuntimeError("401: the credentials were refused")  # not a PermanentError
        if mode == "slow":
            import subprocess, sys
            subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
            )
            asyncio.get_running_loop().create_task(asyncio.sleep(600))
            await asyncio.sleep(3600)
        if mode == "big":
            return {"output": "x" * 200_000}
        if mode == "loopback":
            reader, writer = await asyncio.open_connection("127.0.0.1", inputs["port"])
            writer.close()
            await writer.wait_closed()
        return {"ok": True}


class TestClosed(ExecutorContract):
    executor_class = Closed
    entry_point = False

    @pytest.fixture
    def valid_inputs(self):
        return {"n": 1}


class TestSloppy(ExecutorContract):
    executor_class = Sloppy
    entry_point = False
    network = True
    timeout_seconds = 1.0

    @pytest.fixture
    def valid_inputs(self):
        return {}

    @pytest.fixture
    def permanent_failing_inputs(self):
        return {"mode": "permanent"}

    @pytest.fixture
    def slow_inputs(self):
        return {"mode": "slow"}

    @pytest.fixture
    def oversized_inputs(self):
        return {"mode": "big"}, 1000

    @pytest.fixture
    def loopback_inputs(self):
        import socket
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        yield {"mode": "loopback", "port": server.getsockname()[1]}
        server.close()


class TestStrictWithoutFixtures(ExecutorContract):
    executor_class = Closed
    entry_point = False
    strict = True
    not_applicable = ("slow_inputs",)

    @pytest.fixture
    def valid_inputs(self):
        return {"n": 1}


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
        "TestLeaky::test_runs_as_a_dependent",
        "TestLeaky::test_no_secrets_in_results_errors_events_rows_or_logs",
        "TestUnserialisable::test_valid_inputs_complete",
        "TestUnserialisable::test_runs_as_a_dependent",
        "TestUnserialisable::test_lazy_import",
        "TestClosed::test_runs_as_a_dependent",
        "TestSloppy::test_permanent_errors_are_not_retried",
        "TestSloppy::test_cancellation",
        "TestSloppy::test_timeout",
        "TestSloppy::test_output_cap_honoured",
        "TestSloppy::test_loopback_denied_by_default",
        # strict: every missing fixture fails, except the one declared not applicable
        "TestStrictWithoutFixtures::test_runs_as_a_dependent",
        "TestStrictWithoutFixtures::test_examples_match_schema",
        "TestStrictWithoutFixtures::test_invalid_inputs_rejected",
        "TestStrictWithoutFixtures::test_failing_inputs_fail",
        "TestStrictWithoutFixtures::test_permanent_errors_are_not_retried",
        "TestStrictWithoutFixtures::test_output_cap_honoured",
        "TestStrictWithoutFixtures::test_no_secrets_in_results_errors_events_rows_or_logs",
        "TestStrictWithoutFixtures::test_lazy_import",
    }, "\n".join(result.outlines)
    text = "\n".join(result.outlines)
    assert "processes still running" in text
    assert "asyncio tasks still pending" in text
    assert "strict contract: TestStrictWithoutFixtures gives no failing_inputs" in text
    assert "a loopback target ended completed" in text
