"""Both executors pass the executor contract (real programs, the real engine)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.stdio import CommandExecutor, SystemInfoExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

PYTHON = os.path.realpath(sys.executable)
TOKEN = "contract-token-3c4d5e6f"
HEAVY = ("sqlalchemy", "duckdb", "jsonschema")


class TestCommandExecutorContract(ExecutorContract):
    executor_class = CommandExecutor
    heavy_modules = HEAVY
    secrets = (TOKEN,)

    @pytest.fixture(autouse=True)
    def allow(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        # The contract runs a probe subclass under its own id: enable it too.
        monkeypatch.setenv(
            "AIPARTNERUPFLOW_ENABLED_EXECUTORS", "command_executor,command_executor__contract_probe"
        )
        monkeypatch.setenv("AIPARTNERUPFLOW_COMMAND_ALLOWED_EXECUTABLES", PYTHON)
        monkeypatch.setenv("AIPARTNERUPFLOW_COMMAND_ENV_ALLOW", "API_TOKEN")
        monkeypatch.setenv("AIPARTNERUPFLOW_COMMAND_SECRET_ENV", "CONTRACT_TOKEN")
        monkeypatch.setenv("CONTRACT_TOKEN", TOKEN)
        reload_settings()
        yield
        reload_settings()

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        code = "import os; print('token:', os.environ['API_TOKEN'])"
        return {"command": [PYTHON, "-c", code], "secret_env": {"API_TOKEN": "CONTRACT_TOKEN"}}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({}, "command"),
            ({"command": 3}, "command"),
            ({"command": []}, "command"),
            ({"command": [PYTHON], "timeout": -1}, "timeout"),
            ({"command": [PYTHON], "env": {"A": 1}}, "env.A"),
            ({"command": [PYTHON], "allowed_exit_codes": [1.5]}, "allowed_exit_codes"),
            ({"command": "ls; rm -rf x"}, "command"),
        ]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        code = "import os, sys; sys.stderr.write(os.environ['API_TOKEN']); sys.exit(2)"
        return {"command": [PYTHON, "-c", code], "secret_env": {"API_TOKEN": "CONTRACT_TOKEN"}}

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"command": [PYTHON, "-c", "import time; time.sleep(600)"], "timeout": 600}


class TestSystemInfoExecutorContract(ExecutorContract):
    executor_class = SystemInfoExecutor
    heavy_modules = HEAVY

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        return {"resource": "all"}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({"resource": "gpu"}, "resource"),
            ({"resource": 3}, "resource"),
            ({"path": ""}, "path"),
            ({"timeout": 0}, "timeout"),
        ]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {"resource": "disk", "path": "/no/such/directory/here"}
