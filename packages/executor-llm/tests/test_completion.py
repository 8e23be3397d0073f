"""Completions through the engine against the fake server: prompts, templates, usage, cost,
streaming progress, and the original project's inputs."""

from __future__ import annotations

from typing import Any

from aipartnerupflow.core.events import EventKind
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import API_KEY, task


async def test_prompt_and_system_prompt_are_rendered_and_sent(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text("Bonjour!"))
    tree = await task_manager.run_tasks(
        [
            task(
                "greet",
                llm(
                    system_prompt="You translate to {{ language }}.",
                    prompt="Say hello to {{ people | join(', ') }}.",
                    language="French",
                    people=["Ada", "Alan"],
                    temperature=0.2,
                    max_tokens=50,
                ),
            )
        ]
    )
    outcome = tree.task("greet")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["content"] == "Bonjour!"
    assert outcome.result["success"] is True
    assert outcome.result["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
    }
    assert outcome.result["calls"] == 1
    sent = chat_server.requests[0]
    assert sent["messages"] == [
        {"role": "system", "content": "You translate to French."},
        {"role": "user", "content": "Say hello to Ada, Alan."},
    ]
    assert sent["temperature"] == 0.2
    assert sent["max_tokens"] == 50
    assert chat_server.headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_original_inputs_model_messages_api_key(
    task_manager: Any, chat_server: FakeChatServer
) -> None:
    # The original project's shape: model, messages, api_key (+ api_base for a gateway).
    tree = await task_manager.run_tasks(
        [
            task(
                "legacy",
                {
                    "model": "openai/fake-model",
                    "messages": [{"role": "user", "content": "ping"}],
                    "api_key": API_KEY,
                    "api_base": chat_server.base_url,
                },
            )
        ]
    )
    result = tree.task("legacy").result
    assert result["content"] == "echo: ping"
    assert result["is_stream"] is False
    assert result["model"]
    assert result["data"]["choices"][0]["message"]["content"] == "echo: ping"


async def test_dependency_results_in_templates(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text("forty-two"), ChatReply.text("done"))
    tree = await task_manager.run_tasks(
        [
            task("ask", llm(prompt="What is six times seven?")),
            task(
                "use",
                llm(prompt="The answer was {{ deps['ask'].content }}; shout it."),
                parent_id="ask",
                dependencies=[{"id": "ask"}],
            ),
        ]
    )
    assert tree.task("use").status == "completed", tree.task("use").error
    assert chat_server.requests[1]["messages"][-1]["content"] == (
        "The answer was forty-two; shout it."
    )


async def test_literal_braces_pass_with_raw(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    tree = await task_manager.run_tasks(
        [task("raw", llm(prompt="Format: {% raw %}{{ name }}{% endraw %} and {a}"))]
    )
    assert tree.task("raw").result["content"] == "echo: Format: {{ name }} and {a}"


async def test_usage_and_cost_of_a_known_model(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text("cheap"))
    tree = await task_manager.run_tasks(
        [task("priced", llm(model="openai/gpt-4o-mini", prompt="hi"))]
    )
    result = tree.task("priced").result
    assert result["usage"]["total_tokens"] == 15
    # gpt-4o-mini is in LiteLLM's local cost map: 10 prompt + 5 completion tokens.
    assert result["cost"] is not None and 0 < result["cost"] < 0.001
    tree = await task_manager.run_tasks([task("unpriced", llm(prompt="hi"))])
    assert tree.task("unpriced").result["cost"] is None  # unknown model: no made-up figure


async def test_streaming_is_consumed_and_reported_as_progress(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    chat_server.script(ChatReply.text("one two three four five six", chunks=6))
    events: list[Any] = []
    task_manager.add_listener(events.append)
    tree = await task_manager.run_tasks([task("s", llm(prompt="count", stream=True))])
    result = tree.task("s").result
    assert tree.task("s").status == "completed", tree.task("s").error
    assert result["content"] == "one two three four five six"
    assert result["is_stream"] is True
    assert result["usage"]["total_tokens"] == 15  # include_usage was asked for
    assert chat_server.requests[0]["stream"] is True
    progress = [e.message for e in events if e.kind == EventKind.TASK_PROGRESS]
    assert "streaming: 1 tokens so far" in progress
    assert "streamed: 6 tokens" in progress


async def test_unknown_inputs_are_not_forwarded(
    task_manager: Any, chat_server: FakeChatServer, llm: Any
) -> None:
    # The original forwarded every input to litellm; dependency merging then broke calls.
    tree = await task_manager.run_tasks(
        [task("x", llm(prompt="hi", some_dependency={"big": "result"}, seed=7, top_p=0.5))]
    )
    assert tree.task("x").status == "completed", tree.task("x").error
    sent = chat_server.requests[0]
    assert "some_dependency" not in sent
    assert sent["seed"] == 7 and sent["top_p"] == 0.5
