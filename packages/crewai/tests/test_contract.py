"""The executor contract suite for crewai_executor and batch_crewai_executor."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from aipartnerupflow.extensions.crewai import BatchManager, CrewManager
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import CHAT, HANG, ROUTER, answer


def _slow() -> dict[str, Any]:
    return {"question": HANG}


def _busy() -> Any:
    before = ROUTER.hanging

    async def wait() -> None:
        import asyncio

        for _ in range(2400):
            if ROUTER.hanging > before:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the crew never sent its request")

    return wait


_CREW = {
    "name": "contract crew",
    "agents": [{"role": "Answerer", "goal": "Answer questions"}],
    "tasks": [{"description": "Answer: {question}"}],
}
# The LLM endpoint is the operator's setting, not a task input: no loopback target to deny.
_NA = ("loopback_inputs",)


def _oversized(chat: FakeChatServer, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], int]:
    from aipartnerupflow.core.settings import reload_settings

    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_MAX_OUTPUT_BYTES", "1000")
    reload_settings()
    chat.script(*[ChatReply.text(answer("x" * 50_000)) for _ in range(4)])
    return {"question": "a long one"}, 1000


class TestCrewManagerContract(ExecutorContract):
    executor_class = CrewManager
    executor_params: ClassVar[dict[str, Any]] = _CREW
    heavy_modules = ("crewai", "openai", "litellm", "chromadb", "lancedb")
    secrets = (str(CHAT.api_key),)
    not_applicable = _NA

    @pytest.fixture
    def valid_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.text(answer("42")) for _ in range(4)])
        return {"question": "six times seven"}

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return []

    @pytest.fixture
    def failing_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.error(500) for _ in range(4)])
        return {"question": "anything"}

    @pytest.fixture
    def permanent_failing_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.error(400, message="bad") for _ in range(8)])
        return {"question": "anything"}

    @pytest.fixture
    def slow_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        return _slow()

    @pytest.fixture
    def wait_until_busy(self) -> Any:
        return _busy()

    @pytest.fixture
    def oversized_inputs(
        self, chat: FakeChatServer, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[dict[str, Any], int]:
        return _oversized(chat, monkeypatch)


class TestBatchManagerContract(ExecutorContract):
    executor_class = BatchManager
    executor_params: ClassVar[dict[str, Any]] = {
        "name": "contract batch",
        "works": {"one": {k: v for k, v in _CREW.items() if k != "name"}},
    }
    heavy_modules = ("crewai", "openai", "litellm", "chromadb", "lancedb")
    secrets = (str(CHAT.api_key),)
    not_applicable = _NA

    @pytest.fixture
    def valid_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.text(answer("42")) for _ in range(4)])
        return {"question": "six times seven"}

    @pytest.fixture
    def failing_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.error(500) for _ in range(4)])
        return {"question": "anything"}

    @pytest.fixture
    def permanent_failing_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        chat.script(*[ChatReply.error(400, message="bad") for _ in range(8)])
        return {"question": "anything"}

    @pytest.fixture
    def slow_inputs(self, chat: FakeChatServer) -> dict[str, Any]:
        return _slow()

    @pytest.fixture
    def wait_until_busy(self) -> Any:
        return _busy()

    @pytest.fixture
    def oversized_inputs(
        self, chat: FakeChatServer, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[dict[str, Any], int]:
        return _oversized(chat, monkeypatch)
