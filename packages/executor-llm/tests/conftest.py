"""Fixtures of the llm_executor tests: the fake OpenAI-compatible server of
aipartnerupflow-testing (real HTTP on 127.0.0.1), LiteLLM pointed at it with ``api_base``,
checkpoints in a temporary file, and a guard that fails any test reaching the internet
(LiteLLM's cost map, tokenizer or tiktoken downloads included)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.testing.chat_server import FakeChatServer
from aipartnerupflow.testing.offline import OfflineGuard

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

API_KEY = "sk-fake-test-key"  # the fake server's key (FakeChatServer default)
MODEL = "openai/fake-model"

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_ENV = (
    "AIPARTNERUPFLOW_LLM_MODEL",
    "AIPARTNERUPFLOW_LLM_API_KEY",
    "AIPARTNERUPFLOW_LLM_API_BASE",
    "AIPARTNERUPFLOW_LLM_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_LLM_SECRET_ENV",
    "AIPARTNERUPFLOW_LLM_ALLOW_TOOLS",
    "AIPARTNERUPFLOW_LLM_MAX_TOKENS",
    "AIPARTNERUPFLOW_LLM_CHECKPOINTS",
    "AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH",
    "AIPARTNERUPFLOW_ALLOW_PRIVATE",
    "AIPARTNERUPFLOW_ALLOWED_HOSTS",
    "AIPARTNERUPFLOW_SECRET_ENV",
    "OPENAI_API_KEY",
)
_GUARD = OfflineGuard()


@pytest.fixture(autouse=True, scope="session")
def _no_internet() -> Iterator[None]:
    with _GUARD:
        yield


@pytest.fixture(autouse=True)
def _offline_check() -> Iterator[None]:
    start = len(_GUARD.reached)
    yield
    assert _GUARD.reached[start:] == [], (
        f"a test looked up internet hosts: {_GUARD.reached[start:]}"
    )


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``set_env(NAME=value, ...)``: set variables (None deletes) and re-read the settings."""

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        reload_settings()

    return apply


@pytest.fixture(autouse=True)
def _llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Loopback api_base allowed (the policy tests take it back), checkpoints in tmp."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH", str(tmp_path / "ckpt.sqlite3"))
    reload_settings()
    yield
    reload_settings()


@pytest.fixture
def llm(chat_server: FakeChatServer) -> Any:
    """``llm(**inputs)``: llm_executor inputs aimed at the fake server."""

    def make(**inputs: Any) -> dict[str, Any]:
        return {"model": MODEL, "api_base": chat_server.base_url, "api_key": API_KEY, **inputs}

    return make


def task(task_id: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Task JSON of one llm_executor task."""
    return {
        "id": task_id,
        "name": task_id,
        "schemas": {"method": "llm_executor"},
        "inputs": inputs,
        **extra,
    }
