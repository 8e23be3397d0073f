"""JSON answers: validated against the schema, one repair request, then a permanent failure."""

from __future__ import annotations

import json
from typing import Any

from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import task

PERSON = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}


async def test_valid_json_is_parsed_and_schema_sent(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text('```json\n{"name": "Ada", "age": 36}\n```'))
    tree = await task_manager.run_tasks([task("p", llm(prompt="Who?", json_schema=PERSON))])
    result = tree.task("p").result
    assert result["json"] == {"name": "Ada", "age": 36}
    assert result["repaired"] is False and result["calls"] == 1
    sent = chat_server.requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == PERSON


async def test_json_mode_without_schema(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.json([1, 2, 3]))
    tree = await task_manager.run_tasks([task("j", llm(prompt="list", response_format="json"))])
    assert tree.task("j").result["json"] == [1, 2, 3]
    assert chat_server.requests[0]["response_format"] == {"type": "json_object"}


async def test_invalid_answer_gets_one_repair_request(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(
        ChatReply.json({"name": "Ada", "age": "old"}), ChatReply.json({"name": "Ada", "age": 36})
    )
    tree = await task_manager.run_tasks([task("r", llm(prompt="Who?", json_schema=PERSON))])
    outcome = tree.task("r")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["json"] == {"name": "Ada", "age": 36}
    assert outcome.result["repaired"] is True
    assert outcome.result["calls"] == 2
    assert outcome.result["usage"]["total_tokens"] == 30  # both calls counted
    repair = chat_server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": json.dumps({"name": "Ada", "age": "old"})}
    assert "at age: 'old' is not of type 'integer'" in repair[-1]["content"]


async def test_twice_invalid_fails_permanently(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text("not json"), ChatReply.text("NaN"))
    tree = await task_manager.run_tasks(
        [
            task(
                "bad",
                llm(prompt="Who?", json_schema=PERSON),
                retry={"max_attempts": 3, "backoff_seconds": 0},
            )
        ]
    )
    outcome = tree.task("bad")
    assert outcome.status == "failed"
    assert "also after one repair request" in (outcome.error or "")
    assert "NaN is not valid JSON" in (outcome.error or "")
    assert outcome.attempts == 1  # permanent: never retried
    assert len(chat_server.requests) == 2


async def test_invalid_schema_is_refused_before_any_call(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    tree = await task_manager.run_tasks(
        [task("s", llm(prompt="x", json_schema={"type": "no-such-type"}))]
    )
    assert tree.task("s").status == "failed"
    assert "'json_schema' is not a valid JSON Schema" in (tree.task("s").error or "")
    assert chat_server.requests == []
