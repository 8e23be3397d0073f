"""The contract suite, run against small in-process executors and core's built-in one."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from aipartnerupflow import BaseTask, ExecutableTask
from aipartnerupflow.core.builtin import AggregateResultsExecutor
from aipartnerupflow.core.errors import ExecutorError
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

SECRET = "echo-secret-31415"


class EchoExecutor(ExecutableTask):
    """Echoes a message; fails or waits forever when asked."""

    id = "contract_echo"
    name = "Echo"
    description = "Returns its message."
    tags = ["test"]
    examples = [{"title": "echo", "inputs": {"message": "hi"}}]

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.cancelled = False

    def get_input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "mode": {"enum": ["ok", "fail", "hang"]},
                "password": {"type": "string", "writeOnly": True},
            },
        }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        mode = inputs.get("mode", "ok")
        if mode == "fail":
            raise ExecutorError(f"asked to fail: {inputs['message']}")
        if mode == "hang":
            await asyncio.Event().wait()
        return {"message": self.prefix + inputs["message"]}

    async def cancel(self) -> None:
        self.cancelled = True


class TestEchoContract(ExecutorContract):
    executor_class = EchoExecutor
    executor_params = {"prefix": ">"}
    entry_point = False
    secrets = (SECRET,)

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {"message": "hello", "password": SECRET}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({}, "message"),
            ({"message": 1}, "message"),
            ({"message": "x", "mode": "?"}, "mode"),
        ]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {"message": "boom", "mode": "fail", "password": SECRET}

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"message": "wait", "mode": "hang"}


class TestBuiltinAggregateContract(ExecutorContract):
    """Core's built-in executor, through its entry point; importing it must stay light."""

    executor_class = AggregateResultsExecutor
    heavy_modules = ("sqlalchemy", "duckdb", "pydantic", "jsonschema", "alembic")

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {}


class SlowBaseTask(BaseTask):
    id = "contract_slow_base"
    name = "Slow"
    description = "Sleeps until cancelled."
    inputs_schema = {"type": "object", "properties": {"n": {"type": "integer"}}}

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}


class TestBaseTaskContract(ExecutorContract):
    executor_class = SlowBaseTask
    entry_point = False

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        pytest.skip("this executor only sleeps")

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [({"n": "x"}, "n")]

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"n": 1}


KIT_SECRET = "kit-secret-27182818"


class KitExecutor(ExecutableTask):
    """Every kit feature at once, so every contract check has a passing subject here."""

    id = "contract_kit"
    name = "Kit"
    description = "Connects through the policy, runs programs, caps output, holds a secret."
    examples = [{"inputs": {"mode": "ok"}}]
    dangerous = True
    input_schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["ok", "fail", "permanent", "hang", "big", "connect"]},
            "port": {"type": "integer"},
        },
        "required": ["mode"],
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        from aipartnerupflow.core.errors import PermanentError
        from aipartnerupflow.core.executors import OutboundPolicy, OutputCap, run_process

        ctx = self.context
        assert ctx is not None
        ctx.add_secret(KIT_SECRET)
        mode = inputs["mode"]
        if mode == "fail":
            raise ExecutorError(f"failed while holding {KIT_SECRET}")
        if mode == "permanent":
            raise PermanentError("refused: bad credentials")
        if mode == "hang":
            await run_process(["sleep", "3600"], env={"PATH": "/usr/bin:/bin"})
        if mode == "big":
            cap = OutputCap(1000)
            cap.feed(b"x" * 100_000)
            return {"output": cap.text(), **cap.report()}
        if mode == "connect":
            sock = await OutboundPolicy().connect("127.0.0.1", int(inputs["port"]))
            sock.close()
        return {"ok": True, "token": KIT_SECRET}


class TestKitContract(ExecutorContract):
    executor_class = KitExecutor
    entry_point = False
    strict = True
    network = True
    timeout_seconds = 1.0
    secrets = (KIT_SECRET,)
    not_applicable = ("heavy_modules",)

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {"mode": "ok"}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [({}, "mode"), ({"mode": "?"}, "mode")]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {"mode": "fail"}

    @pytest.fixture
    def permanent_failing_inputs(self) -> dict[str, Any]:
        return {"mode": "permanent"}

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"mode": "hang"}

    @pytest.fixture
    def oversized_inputs(self) -> tuple[dict[str, Any], int]:
        return {"mode": "big"}, 1000

    @pytest.fixture
    def loopback_inputs(self) -> Iterator[dict[str, Any]]:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        yield {"mode": "connect", "port": server.getsockname()[1]}
        server.close()
