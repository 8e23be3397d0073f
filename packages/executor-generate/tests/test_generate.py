"""generate_executor against a scripted model: invalid answers are fed back with the engine's
validation errors; the result is a valid tree; run=true runs it."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from aipartnerupflow.core.errors import PermanentError
from aipartnerupflow.core.registry import get_executor_registry
from aipartnerupflow.core.validation import tasks_from_array, validate_tasks
from aipartnerupflow.extensions.generate import GenerateExecutor
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import INVALID_TREE, VALID_TREE, ShoutExecutor


async def test_invalid_then_valid_tree(chat_server: FakeChatServer, gen: Any) -> None:
    chat_server.script(ChatReply.json(INVALID_TREE), ChatReply.json(VALID_TREE))
    result = await GenerateExecutor().execute(gen(requirement="Shout hello and collect it"))
    assert result["rounds"] == 2
    assert result["count"] == 2
    # The result passes the engine's full validation (fresh ids, references remapped).
    models = tasks_from_array(result["tasks"])
    root = validate_tasks(models, get_executor_registry())
    assert root.name == "Collect" and root.id == result["root_id"]
    child = next(t for t in result["tasks"] if t["name"] == "Shout hello")
    assert child["parent_id"] == root.id
    assert result["tasks"][0]["dependencies"] == [{"id": child["id"], "required": True}]
    assert {t["id"] for t in result["tasks"]}.isdisjoint({"root", "a"})

    first, second = chat_server.requests
    system = first["messages"][0]["content"]
    assert "## shout_test_executor: Shout" in system
    assert '"required":["text"]' in system  # input schemas are listed
    assert "generate_executor" not in system.split("Executors available:")[1]
    assert first["messages"][1] == {"role": "user", "content": "Shout hello and collect it"}
    feedback = second["messages"][-1]["content"]
    assert "teleport_executor" in feedback
    assert "several root tasks" in feedback
    assert "'text' is required" in feedback
    assert second["messages"][-2]["content"] == json.dumps(INVALID_TREE)
    assert result["problems"] and "teleport_executor" in " ".join(result["problems"][0])


async def test_not_json_is_fed_back_and_rounds_are_bounded(
    chat_server: FakeChatServer, gen: Any
) -> None:
    chat_server.script(ChatReply.text("Sure! Here is a plan."), *[ChatReply.json(INVALID_TREE)] * 3)
    with pytest.raises(PermanentError) as info:
        await GenerateExecutor().execute(gen(requirement="x", max_rounds=2))
    assert "no valid task tree in 2 round(s)" in str(info.value)
    assert "teleport_executor" in str(info.value)
    assert len(chat_server.requests) == 2
    assert "not valid JSON" in chat_server.requests[1]["messages"][-1]["content"]


class WipeExecutor(ShoutExecutor):
    """A dangerous executor (like command_executor): opt-in only."""

    id: ClassVar[str] = "wipe_test_executor"
    dangerous: ClassVar[bool] = True


async def test_dangerous_executors_are_neither_offered_nor_accepted(
    chat_server: FakeChatServer, gen: Any
) -> None:
    registry = get_executor_registry()
    registry.register(WipeExecutor, override=True)
    try:
        risky = [
            {
                "id": "r",
                "name": "Wipe",
                "schemas": {"method": "wipe_test_executor"},
                "inputs": {"text": "rm -rf /"},
            },
        ]
        chat_server.script(ChatReply.json(risky), ChatReply.json(VALID_TREE))
        result = await GenerateExecutor().execute(gen(requirement="clean up"))
    finally:
        registry.unregister(WipeExecutor.id)
    assert result["rounds"] == 2
    system = chat_server.requests[0]["messages"][0]["content"]
    assert "## wipe_test_executor" not in system
    assert "## shout_test_executor" in system
    feedback = chat_server.requests[1]["messages"][-1]["content"]
    assert "AIPARTNERUPFLOW_ENABLED_EXECUTORS" in feedback


async def test_run_runs_the_tree(task_manager: Any, chat_server: FakeChatServer, gen: Any) -> None:
    chat_server.script(ChatReply.json(VALID_TREE))
    tree = await task_manager.run_tasks(
        [
            {
                "id": "g",
                "name": "g",
                "user_id": "alice",
                "schemas": {"method": "generate_executor"},
                "inputs": gen(requirement="Shout hello", run=True, user_id="mallory"),
            }
        ]
    )
    outcome = tree.task("g")
    assert outcome.status == "completed", outcome.error
    run = outcome.result["run"]
    assert run["status"] == "completed"
    shouted = next(t for t in run["tasks"] if t["name"] == "Shout hello")
    assert shouted["result"] == {"shouted": "HELLO"}
    root = next(t for t in run["tasks"] if t["name"] == "Collect")
    assert root["result"]["count"] == 1
    # The running task's user owns the generated tasks, whatever the inputs claim.
    assert {t["user_id"] for t in outcome.result["tasks"]} == {"alice"}


async def test_executors_input_limits_the_offer(chat_server: FakeChatServer, gen: Any) -> None:
    chat_server.script(ChatReply.json(VALID_TREE))
    await GenerateExecutor().execute(
        gen(requirement="x", executors=["shout_test_executor", "aggregate_results_executor"])
    )
    system = chat_server.requests[0]["messages"][0]["content"]
    assert system.count("\n## ") == 2
