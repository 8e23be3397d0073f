"""A tree where a crew's output feeds an HTTP task: crewai_executor -> rest_executor.

Real crewai against the fake OpenAI-compatible server, real httpx against the HTTP target
server, both on loopback; crewai's telemetry off and its files in a temporary directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer
from aipartnerupflow.testing.http_target import TargetState, build_target_app
from aipartnerupflow.testing.server import LoopbackServer


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[FakeChatServer, str]]:
    for name, value in {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
        "CREWAI_STORAGE_DIR": str(tmp_path / "crewai"),
        "AIPARTNERUPFLOW_HTTP_ALLOW_PRIVATE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    chat = FakeChatServer()
    with LoopbackServer(chat.app()) as llm, LoopbackServer(build_target_app(TargetState())) as web:
        chat.url = llm.url
        monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_MODEL", "openai/fake-model")
        monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_BASE_URL", chat.base_url)
        monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_API_KEY", str(chat.api_key))
        reload_settings()
        yield chat, web.url
    reload_settings()


@pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")
@pytest.mark.filterwarnings("ignore::ImportWarning")
async def test_crew_output_is_posted_by_the_dependent_http_task(env: Any) -> None:
    from aipartnerupflow import TaskManager, create_session

    chat, web = env
    chat.script(ChatReply.text('Final Answer: {"title": "Bees", "facts": 3}'))
    manager = TaskManager(create_session("duckdb:///:memory:"))
    try:
        result = await manager.run_tasks(
            [
                {
                    "id": "write",
                    "name": "write",
                    "schemas": {"method": "crewai_executor"},
                    "params": {
                        "agents": [{"role": "Writer", "goal": "Write JSON"}],
                        "tasks": [{"description": "Write a JSON note about {topic}"}],
                    },
                    "inputs": {"topic": "bees"},
                },
                {
                    "id": "post",
                    "name": "post",
                    "parent_id": "write",
                    "dependencies": ["write"],
                    # copies the crew result's "json" field into the request body
                    "schemas": {
                        "method": "rest_executor",
                        "input_schema": {"type": "object", "properties": {"json": {}}},
                    },
                    "inputs": {"url": f"{web}/echo", "method": "POST"},
                },
            ]
        )
    finally:
        await manager.close()
    assert result.status == "completed", result.to_dict()
    assert "Write a JSON note about bees" in str(chat.requests[0]["messages"])
    echoed = result.task("post").result["body"]
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"title": "Bees", "facts": 3}  # sent as JSON
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
