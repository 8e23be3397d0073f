"""Provider failures map onto the engine's kinds: 429/5xx retryable, auth and bad requests
permanent; inputs problems fail before any call; the key never shows."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.extensions.llm import LLMExecutor
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import API_KEY, task

RETRY = {"max_attempts": 3, "backoff_seconds": 0, "jitter": False}


async def test_429_with_retry_after_then_success(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.error(429, retry_after=0), ChatReply.text("finally"))
    tree = await task_manager.run_tasks([task("rl", llm(prompt="hi"), retry=RETRY)])
    outcome = tree.task("rl")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["content"] == "finally"
    assert outcome.attempts == 2
    assert len(chat_server.requests) == 2


async def test_429_carries_retry_after(chat_server: FakeChatServer, llm: Any) -> None:
    chat_server.script(ChatReply.error(429, retry_after=7))
    with pytest.raises(RetryableError) as info:
        await LLMExecutor().execute(llm(prompt="hi"))
    assert info.value.retry_after == 7
    assert "rate limited (retry after 7s)" in str(info.value)


async def test_500_is_retryable_and_fails_when_attempts_run_out(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.error(500), ChatReply.error(500))
    tree = await task_manager.run_tasks(
        [task("e", llm(prompt="hi"), retry={**RETRY, "max_attempts": 2})]
    )
    outcome = tree.task("e")
    assert outcome.status == "failed"
    assert outcome.attempts == 2
    assert "provider error that may pass" in (outcome.error or "")
    chat_server.script(ChatReply.error(503))
    with pytest.raises(RetryableError):
        await LLMExecutor().execute(llm(prompt="hi"))


async def test_bad_key_is_permanent_and_never_shown(
    task_manager: Any, chat_server: FakeChatServer, llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-SECRET-123456"
    tree = await task_manager.run_tasks(
        [task("auth", llm(prompt="hi", api_key=wrong), retry=RETRY)]
    )
    outcome = tree.task("auth")
    assert outcome.status == "failed"
    assert outcome.attempts == 1
    assert "refused the API key" in (outcome.error or "")
    row = await task_manager.task_repository.get_task_by_id("auth")
    assert wrong not in (row.error or "") + json.dumps(row.result) + caplog.text


async def test_bad_request_is_permanent(chat_server: FakeChatServer, llm: Any) -> None:
    chat_server.script(ChatReply.error(400, message="max_tokens is too large"))
    with pytest.raises(PermanentError) as info:
        await LLMExecutor().execute(llm(prompt="hi"))
    assert not isinstance(info.value, RetryableError)
    assert "refused the request as invalid" in str(info.value)
    assert "max_tokens is too large" in str(info.value)


async def test_key_from_allow_listed_env(
    chat_server: FakeChatServer, llm: Any, monkeypatch: pytest.MonkeyPatch, set_env: Any
) -> None:
    inputs = llm(prompt="hi")
    del inputs["api_key"]
    monkeypatch.setenv("MY_LLM_KEY", API_KEY)
    with pytest.raises(InputValidationError) as info:
        await LLMExecutor().execute({**inputs, "api_key_env": "MY_LLM_KEY"})
    assert "AIPARTNERUPFLOW_LLM_SECRET_ENV" in str(info.value)
    set_env(AIPARTNERUPFLOW_LLM_SECRET_ENV="MY_LLM_KEY")
    result = await LLMExecutor().execute({**inputs, "api_key_env": "MY_LLM_KEY"})
    assert result["content"] == "echo: hi"
    set_env(AIPARTNERUPFLOW_LLM_SECRET_ENV=None, AIPARTNERUPFLOW_LLM_API_KEY=API_KEY)
    result = await LLMExecutor().execute(inputs)  # the operator's key
    assert result["content"] == "echo: hi"
    assert chat_server.headers[-1]["authorization"] == f"Bearer {API_KEY}"


async def test_result_never_holds_the_key(chat_server: FakeChatServer, llm: Any) -> None:
    chat_server.script(ChatReply.text(f"I saw your key {API_KEY}"))  # a careless provider
    result = await LLMExecutor().execute(llm(prompt="hi"))
    assert API_KEY not in json.dumps(result)
    assert result["content"] == "I saw your key ***"


async def test_tools_are_off_by_default(
    chat_server: FakeChatServer, llm: Any, set_env: Any
) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(InputValidationError, match="AIPARTNERUPFLOW_LLM_ALLOW_TOOLS"):
        await LLMExecutor().execute(llm(prompt="hi", tools=tools))
    assert chat_server.requests == []
    set_env(AIPARTNERUPFLOW_LLM_ALLOW_TOOLS="true")
    chat_server.script(ChatReply.tool_call("f", {"x": 1}))
    result = await LLMExecutor().execute(llm(prompt="hi", tools=tools))
    assert result["tool_calls"][0]["name"] == "f"
    assert json.loads(result["tool_calls"][0]["arguments"]) == {"x": 1}
    assert chat_server.requests[0]["tools"] == tools


async def test_loopback_api_base_denied_by_default(
    chat_server: FakeChatServer, llm: Any, set_env: Any
) -> None:
    set_env(AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE=None)
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_LLM_"):
        await LLMExecutor().execute(llm(prompt="hi"))
    with pytest.raises(OutboundPolicyError):
        await LLMExecutor().execute(llm(prompt="hi", api_base="http://169.254.169.254/v1"))
    assert chat_server.requests == []
    # The operator's own api_base is trusted.
    inputs = llm(prompt="hi")
    set_env(AIPARTNERUPFLOW_LLM_API_BASE=inputs.pop("api_base"))
    assert (await LLMExecutor().execute(inputs))["content"] == "echo: hi"


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({}, "give 'messages'"),
        ({"prompt": "{{ missing }}"}, "undefined variable ('missing' is undefined)"),
        ({"prompt": "{{ ''.__class__.__mro__ }}"}, "refused by the template sandbox"),
        ({"prompt": "{{ 'a' * 100000000 }}"}, "refused by the template sandbox"),
        ({"prompt": "{% for %}"}, "not a valid template"),
        ({"prompt": "a\x00b"}, "NUL"),
        ({"prompt": "x", "temperature": float("nan")}, "finite number"),
        ({"prompt": "x", "response_format": "yaml"}, "response_format 'yaml' is unknown"),
        ({"prompt": "x", "api_key": "a", "api_key_env": "B"}, "not both"),
    ],
)
async def test_bad_inputs_fail_before_any_call(
    chat_server: FakeChatServer, llm: Any, inputs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InputValidationError) as info:
        await LLMExecutor().execute(llm(**inputs))
    assert needle in str(info.value)
    assert chat_server.requests == []


async def test_model_is_required(chat_server: FakeChatServer, llm: Any) -> None:
    inputs = llm(prompt="hi")
    del inputs["model"]
    with pytest.raises(InputValidationError, match="AIPARTNERUPFLOW_LLM_MODEL"):
        await LLMExecutor().execute(inputs)


async def test_logs_outside_the_engine_are_scrubbed(
    chat_server: FakeChatServer, llm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-SECRET-abcdef"
    with pytest.raises(PermanentError) as info:
        await LLMExecutor().execute(llm(prompt="hi", api_key=wrong))
    assert wrong not in str(info.value) + caplog.text
