"""The settings model is published for the configuration reference and reads its variables."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.extensions.llm import LLMSettings


def test_settings_entry_point() -> None:
    found = [
        ep for ep in metadata.entry_points(group="aipartnerupflow.settings") if ep.name == "llm"
    ]
    assert [ep.load() for ep in found] == [LLMSettings]


def test_variables_defaults_and_fallbacks() -> None:
    by_name = {v.name: v for v in LLMSettings.variables()}
    assert by_name["AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE"].fallback == "AIPARTNERUPFLOW_ALLOW_PRIVATE"
    assert by_name["AIPARTNERUPFLOW_LLM_ALLOW_TOOLS"].default is False
    assert by_name["AIPARTNERUPFLOW_LLM_CHECKPOINTS"].default is True
    assert all(v.description for v in by_name.values())


def test_from_env_and_bad_values() -> None:
    settings = LLMSettings.from_env(
        {"AIPARTNERUPFLOW_LLM_MAX_TOKENS": "256", "AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH": "~/x.db"}
    )
    assert settings.max_tokens == 256
    assert settings.checkpoint_file() == Path.home() / "x.db"
    assert LLMSettings.from_env({}).checkpoint_file().name == "llm-checkpoints.sqlite3"
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_LLM_MAX_TOKENS='0'"):
        LLMSettings.from_env({"AIPARTNERUPFLOW_LLM_MAX_TOKENS": "0"})


async def test_operator_max_tokens_is_a_ceiling(chat_server: Any, llm: Any, set_env: Any) -> None:
    from aipartnerupflow.extensions.llm import LLMExecutor

    set_env(AIPARTNERUPFLOW_LLM_MAX_TOKENS="100")
    await LLMExecutor().execute(llm(prompt="a", max_tokens=5000))
    await LLMExecutor().execute(llm(prompt="b"))
    assert [r["max_tokens"] for r in chat_server.requests] == [100, 100]


async def test_hostile_nesting_is_refused(chat_server: Any, llm: Any) -> None:
    from aipartnerupflow.core.errors import InputValidationError
    from aipartnerupflow.extensions.llm import LLMExecutor

    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InputValidationError, match="cannot be sent as JSON"):
        await LLMExecutor().execute(llm(prompt="x", stop=deep))
    assert chat_server.requests == []
