"""Fixtures of the generate_executor tests: a scripted model (the fake OpenAI-compatible
server of aipartnerupflow-testing, real HTTP on loopback), a small executor for generated
trees to use, and no internet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.registry import get_executor_registry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import reset_default_session
from aipartnerupflow.testing.chat_server import FakeChatServer
from aipartnerupflow.testing.offline import OfflineGuard

pytest_plugins = ["aipartnerupflow.testing.fixtures"]

API_KEY = "sk-fake-test-key"
MODEL = "openai/fake-model"

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_GUARD = OfflineGuard()


class ShoutExecutor(ExecutableTask):
    """Upper-cases ``text`` (a stand-in for any installed executor)."""

    id: ClassVar[str] = "shout_test_executor"
    name: ClassVar[str] = "Shout"
    description: ClassVar[str] = "Returns the text in capitals."
    input_schema: ClassVar[dict[str, Any] | None] = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "description": "What to shout."}},
    }

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"shouted": str(inputs["text"]).upper()}


@pytest.fixture(autouse=True, scope="session")
def _no_internet() -> Iterator[None]:
    with _GUARD:
        yield


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("AIPARTNERUPFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIPARTNERUPFLOW_LLM_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("AIPARTNERUPFLOW_LLM_CHECKPOINT_PATH", str(tmp_path / "ckpt.sqlite3"))
    monkeypatch.setenv("AIPARTNERUPFLOW_DATABASE_URL", f"duckdb:///{tmp_path / 'gen.duckdb'}")
    reset_default_session()
    reload_settings()
    registry = get_executor_registry()
    registry.register(ShoutExecutor, override=True)
    start = len(_GUARD.reached)
    yield
    registry.unregister(ShoutExecutor.id)
    reset_default_session()
    reload_settings()
    assert _GUARD.reached[start:] == [], (
        f"a test looked up internet hosts: {_GUARD.reached[start:]}"
    )


@pytest.fixture
def gen(chat_server: FakeChatServer) -> Any:
    """``gen(**inputs)``: generate_executor inputs aimed at the fake server."""

    def make(**inputs: Any) -> dict[str, Any]:
        return {"model": MODEL, "api_base": chat_server.base_url, "api_key": API_KEY, **inputs}

    return make


VALID_TREE = [
    {
        "id": "root",
        "name": "Collect",
        "schemas": {"method": "aggregate_results_executor"},
        "dependencies": [{"id": "a"}],
    },
    {
        "id": "a",
        "name": "Shout hello",
        "parent_id": "root",
        "schemas": {"method": "shout_test_executor"},
        "inputs": {"text": "hello"},
    },
]

INVALID_TREE = [
    {"id": "x", "name": "Fly", "schemas": {"method": "teleport_executor"}},
    {"id": "y", "name": "Shout", "schemas": {"method": "shout_test_executor"}, "inputs": {}},
]
