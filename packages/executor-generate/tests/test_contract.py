"""generate_executor passes the executor contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aipartnerupflow.extensions.generate import GenerateExecutor
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import API_KEY, MODEL, VALID_TREE


def _inputs(chat_server: FakeChatServer, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "api_base": chat_server.base_url,
        "api_key": API_KEY,
        "requirement": "Shout hello and collect it",
        **extra,
    }


class TestGenerateExecutorContract(ExecutorContract):
    executor_class = GenerateExecutor
    heavy_modules = ("litellm", "openai", "tiktoken", "tokenizers", "jinja2")
    secrets = (API_KEY,)
    network = True
    strict = True
    # The result is a task tree of bounded size (the model's max_tokens), not captured output.
    not_applicable = ("oversized_inputs",)

    @pytest.fixture
    def valid_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        chat_server.script(*[ChatReply.json(VALID_TREE)] * 10)
        return _inputs(chat_server)

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({"model": MODEL}, "requirement"),
            ({"requirement": ""}, "requirement"),
            ({"requirement": "x", "max_rounds": 0}, "max_rounds"),
            ({"requirement": "x", "max_rounds": 11}, "max_rounds"),
            ({"requirement": "x", "executors": "all"}, "executors"),
        ]

    @pytest.fixture
    def failing_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return _inputs(chat_server, api_key="sk-wrong")

    @pytest.fixture
    def permanent_failing_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return _inputs(chat_server, api_key="sk-wrong")

    @pytest.fixture
    def slow_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        chat_server.script(*[ChatReply.text("late", delay=600) for _ in range(3)])
        return _inputs(chat_server, timeout=3000, checkpoint=False)

    @pytest.fixture
    def wait_until_busy(self, chat_server: FakeChatServer) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            start = len(chat_server.requests)
            while len(chat_server.requests) == start:
                await asyncio.sleep(0.02)

        return wait

    @pytest.fixture
    def loopback_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return _inputs(chat_server)

    @pytest.fixture
    def private_allowed(self, monkeypatch: pytest.MonkeyPatch) -> bool:
        from aipartnerupflow.core.settings import reload_settings

        monkeypatch.delenv("AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE", raising=False)
        reload_settings()
        return False
