"""llm_executor passes the executor contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aipartnerupflow.extensions.llm import LLMExecutor
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import API_KEY, MODEL


class TestLLMExecutorContract(ExecutorContract):
    executor_class = LLMExecutor
    heavy_modules = ("litellm", "openai", "tiktoken", "tokenizers", "jinja2")
    secrets = (API_KEY,)
    network = True
    strict = True
    # The answer is bounded by max_tokens (and the operator's ceiling), not captured output.
    not_applicable = ("oversized_inputs",)

    @pytest.fixture
    def valid_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return {
            "model": MODEL,
            "api_base": chat_server.base_url,
            "api_key": API_KEY,
            "prompt": "Say {{ word }}",
            "word": "hello",
        }

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({"model": MODEL, "prompt": 5}, "prompt"),
            ({"model": MODEL, "messages": "hi"}, "messages"),
            ({"model": MODEL, "prompt": "x", "temperature": 3}, "temperature"),
            ({"model": MODEL, "prompt": "x", "max_tokens": 0}, "max_tokens"),
            ({"model": MODEL, "prompt": "x", "timeout": -1}, "timeout"),
            ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ]

    @pytest.fixture
    def failing_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return {
            "model": MODEL,
            "api_base": chat_server.base_url,
            "api_key": "sk-wrong",
            "prompt": "hi",
        }

    @pytest.fixture
    def permanent_failing_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return {
            "model": MODEL,
            "api_base": chat_server.base_url,
            "api_key": "sk-wrong",
            "prompt": "hi",
        }

    @pytest.fixture
    def slow_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        chat_server.script(*[ChatReply.text("late", delay=600) for _ in range(3)])
        return {
            "model": MODEL,
            "api_base": chat_server.base_url,
            "api_key": API_KEY,
            "prompt": "take your time",
            "timeout": 3000,
            "checkpoint": False,
        }

    @pytest.fixture
    def wait_until_busy(self, chat_server: FakeChatServer) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            start = len(chat_server.requests)
            while len(chat_server.requests) == start:
                await asyncio.sleep(0.02)

        return wait

    @pytest.fixture
    def loopback_inputs(self, chat_server: FakeChatServer) -> dict[str, Any]:
        return {
            "model": MODEL,
            "api_base": chat_server.base_url,
            "api_key": API_KEY,
            "prompt": "hi",
        }

    @pytest.fixture
    def private_allowed(self, set_env: Any) -> bool:
        set_env(AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE=None)  # the default policy
        return False
