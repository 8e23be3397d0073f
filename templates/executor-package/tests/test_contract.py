"""The executor contract suite from aipartnerupflow-testing, strict: every check runs."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.example.command import ExampleCommandExecutor
from aipartnerupflow.extensions.example.network import ExampleFetchExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase, OversizedCase
from aipartnerupflow.testing.http_target import HttpTarget

TOKEN = "example-test-token-8c1f"  # a secret the executors read from the environment


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test server listens on 127.0.0.1: allow private targets (the loopback test undoes
    it) and let inputs read the token variable."""
    monkeypatch.setenv("AIPARTNERUPFLOW_EXAMPLE_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_EXAMPLE_SECRET_ENV", "EXAMPLE_TOKEN")
    monkeypatch.setenv("EXAMPLE_TOKEN", TOKEN)
    reload_settings()
    yield
    reload_settings()


class TestFetchContract(ExecutorContract):
    executor_class = ExampleFetchExecutor
    strict = True
    network = True
    heavy_modules = ("httpx", "httpcore")
    secrets = (TOKEN,)

    @pytest.fixture
    def valid_inputs(self, http_target: HttpTarget) -> dict[str, Any]:
        # /secret-echo sends the Authorization header back: the result must show it masked.
        return {"url": f"{http_target.url}/secret-echo", "token_env": "EXAMPLE_TOKEN"}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({}, "url"),
            ({"url": 3}, "url"),
            ({"url": "http://x", "max_bytes": -1}, "max_bytes"),
        ]

    @pytest.fixture
    def failing_inputs(self, http_target: HttpTarget) -> dict[str, Any]:
        return {"url": f"{http_target.url}/status/503", "token_env": "EXAMPLE_TOKEN"}

    @pytest.fixture
    def permanent_failing_inputs(self, http_target: HttpTarget) -> dict[str, Any]:
        return {"url": f"{http_target.url}/status/404"}

    @pytest.fixture
    def slow_inputs(self, http_target: HttpTarget) -> dict[str, Any]:
        return {"url": f"{http_target.url}/hang"}

    @pytest.fixture
    def wait_until_busy(self, http_target: HttpTarget) -> Callable[[], Awaitable[None]]:
        return http_target.state.wait_received

    @pytest.fixture
    def oversized_inputs(self, http_target: HttpTarget) -> OversizedCase:
        return {"url": f"{http_target.url}/big/200000", "max_bytes": 1000}, 1000

    @pytest.fixture
    def loopback_inputs(
        self, http_target: HttpTarget, monkeypatch: pytest.MonkeyPatch
    ) -> dict[str, Any]:
        monkeypatch.delenv("AIPARTNERUPFLOW_EXAMPLE_ALLOW_PRIVATE")
        reload_settings()
        return {"url": f"{http_target.url}/echo"}


class TestCommandContract(ExecutorContract):
    executor_class = ExampleCommandExecutor
    strict = True
    secrets = (TOKEN,)
    # It wraps no SDK: there is no heavy module to keep out of the entry point's import.
    not_applicable = ("heavy_modules",)

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        # The program prints the secret it was given: the result must show it masked.
        code = "import os; print('token', os.environ['TOKEN'])"
        return {"command": [sys.executable, "-c", code], "secret_env": {"TOKEN": "EXAMPLE_TOKEN"}}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [({}, "command"), ({"command": "ls -l"}, "command"), ({"command": [1]}, "command")]

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any]:
        return {
            "command": [sys.executable, "-c", "import sys; sys.exit(3)"],
            "secret_env": {"TOKEN": "EXAMPLE_TOKEN"},
        }

    @pytest.fixture
    def permanent_failing_inputs(self) -> dict[str, Any]:
        return {"command": ["/nonexistent/program"]}

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any]:
        return {"command": ["sleep", "3600"]}

    @pytest.fixture
    def oversized_inputs(self) -> OversizedCase:
        code = "import sys; sys.stdout.write('x' * 200000)"
        return {"command": [sys.executable, "-c", code], "max_output_bytes": 1000}, 1000
