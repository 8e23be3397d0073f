"""The executor contract (aipartnerupflow.testing.contract) for apflow_api_executor, against a
second aipartnerupflow instance on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import pytest

from aipartnerupflow.extensions.apflow import ApflowApiExecutor
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase, OversizedCase

from .remote import RemoteInstance, Signals


def _tree(method: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": "r", "name": "remote", "schemas": {"method": method}, "inputs": inputs}]


def _not_the_remote_server(record: logging.LogRecord) -> bool:
    return not record.name.startswith(("a2a.server", "sse_starlette", "uvicorn"))


class TestApflowContract(ExecutorContract):
    executor_class = ApflowApiExecutor
    strict = True
    network = True
    heavy_modules = ("a2a", "httpx", "google.protobuf")
    secrets: ClassVar[Sequence[str]] = ()

    @pytest.fixture(autouse=True)
    def _secret(
        self, token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.setattr(type(self), "secrets", (token,))
        # The remote instance shares this process here; in use it is another process, whose
        # logs are not this executor's. (a2a-sdk's server logs request headers, bearer token
        # included, at DEBUG: keep its records out of the log capture checked for secrets.)
        caplog.handler.addFilter(_not_the_remote_server)

    @pytest.fixture
    def valid_inputs(self, remote: RemoteInstance, token: str) -> dict[str, Any]:
        return {
            "base_url": remote.url,
            "auth_token": token,
            "tasks": _tree("apflow_test_echo", {"text": "contract"}),
        }

    @pytest.fixture
    def invalid_inputs(self, remote: RemoteInstance) -> list[InvalidCase]:
        return [
            ({"base_url": 3, "text": "x"}, "base_url"),
            ({"base_url": remote.url, "text": "x", "timeout": -1}, "timeout"),
            ({"base_url": remote.url, "tasks": "not a list"}, "tasks"),
            ({"base_url": remote.url, "method": "tasks.delete"}, "method"),
            ({"base_url": remote.url}, "tasks"),
        ]

    @pytest.fixture
    def failing_inputs(self, remote: RemoteInstance, token: str) -> dict[str, Any]:
        return {
            "base_url": remote.url,
            "auth_token": token,
            # (the token is not put in the remote's data: the remote instance shares this
            # process here, and its own logs are not this executor's to scrub)
            "tasks": _tree("apflow_test_fail", {"message": "told to fail"}),
        }

    @pytest.fixture
    def permanent_failing_inputs(self, remote: RemoteInstance, token: str) -> dict[str, Any]:
        return {
            "base_url": remote.url,
            "auth_token": token,
            "tasks": _tree("no_such_remote_executor", {}),
        }

    @pytest.fixture
    def slow_inputs(self, remote: RemoteInstance, token: str) -> dict[str, Any]:
        return {
            "base_url": remote.url,
            "auth_token": token,
            "tasks": _tree("apflow_test_hang", {"gate": "contract"}),
            "timeout": 120,
        }

    @pytest.fixture
    def wait_until_busy(self) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            event = Signals.event(Signals.started, "contract")
            await asyncio.to_thread(event.wait, 30)

        return wait

    @pytest.fixture
    def oversized_inputs(self, remote: RemoteInstance, token: str) -> OversizedCase:
        inputs = {
            "base_url": remote.url,
            "auth_token": token,
            "tasks": _tree("apflow_test_big", {"size": 100_000}),
            "max_output_bytes": 1000,
        }
        return inputs, 1000

    @pytest.fixture
    def loopback_inputs(self, remote: RemoteInstance, token: str) -> dict[str, Any]:
        return {"base_url": remote.url, "auth_token": token, "text": "loopback"}

    @pytest.fixture
    def private_allowed(self) -> bool:
        return True  # conftest allows it; test_loopback_is_denied_by_default proves the default
