"""CrewManager with real crewai objects against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aipartnerupflow.core.errors import (
    ExecutorError,
    InputValidationError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.extensions.crewai import CrewManager, register_tool, unregister_tool
from aipartnerupflow.extensions.crewai.runtime import AgentGaveUpError
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import HANG, ROUTER, answer, prompts

TWO_AGENTS: dict[str, Any] = {
    "name": "Research Crew",
    "agents": [
        {"role": "Researcher", "goal": "Find facts about {topic}", "backstory": "A librarian."},
        {"role": "Writer", "goal": "Write a summary", "llm": {"temperature": 0.1}},
    ],
    "tasks": [
        {
            "name": "research",
            "description": "Research {topic} and list three facts.",
            "expected_output": "Three facts",
            "agent": "Researcher",
        },
        {
            "name": "write",
            "description": "Summarise the facts about {topic}.",
            "expected_output": "A JSON object with a summary",
            "agent": "Writer",
            "context": ["research"],
        },
    ],
}


async def test_two_agent_crew_runs_in_order_and_passes_context(chat: FakeChatServer) -> None:
    chat.script(
        ChatReply.text(answer("1. bees dance 2. bees sting 3. bees make honey")),
        ChatReply.text(answer('{"summary": "bees are busy"}')),
    )
    result = await CrewManager(**TWO_AGENTS).execute({"topic": "bees"})

    assert result["status"] == "success"
    assert result["output"] == '{"summary": "bees are busy"}'
    assert result["result"] == {"summary": "bees are busy"}
    assert result["json"] == {"summary": "bees are busy"}
    assert [t["name"] for t in result["tasks"]] == ["research", "write"]
    assert [t["agent"] for t in result["tasks"]] == ["Researcher", "Writer"]
    assert result["tasks"][0]["output"].startswith("1. bees dance")
    assert result["token_usage"]["total_tokens"] == 30
    assert result["token_usage"]["prompt_tokens"] == 20

    sent = prompts(chat)
    assert len(sent) == 2
    assert "Research bees and list three facts." in sent[0]  # inputs interpolated
    assert "Summarise the facts about bees." in sent[1]
    assert "bees make honey" in sent[1]  # the first task's output is the second's context
    assert all(body["model"] == "fake-model" for body in chat.requests)
    assert chat.requests[1].get("temperature") == 0.1
    assert chat.headers[0]["authorization"] == f"Bearer {chat.api_key}"


async def test_agents_and_tasks_as_named_objects_and_the_works_form(chat: FakeChatServer) -> None:
    chat.script(ChatReply.text(answer("done")))
    crew = CrewManager(
        name="legacy",
        works={
            "agents": {"analyst": {"role": "Analyst", "goal": "Analyze"}},
            "tasks": {"analyze": {"description": "Analyze {x}", "agent": "analyst"}},
        },
    )
    result = await crew.execute({"x": "sales"})
    assert result["tasks"] == [{"name": "analyze", "agent": "analyst", "output": "done"}]
    assert "Analyze sales" in prompts(chat)[0]


async def test_an_empty_answer_means_the_agent_gave_up_and_fails(chat: FakeChatServer) -> None:
    chat.script(ChatReply.text(""), ChatReply.text(""), ChatReply.text(""))
    crew = CrewManager(
        agents=[{"role": "Analyst", "goal": "Analyze"}], tasks=[{"description": "Analyze"}]
    )
    with pytest.raises(AgentGaveUpError, match="gave up"):
        await crew.execute({})


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (ChatReply.error(500), RetryableError),
        (ChatReply.error(429, retry_after=7), RetryableError),
        (ChatReply.error(400, message="bad request"), PermanentError),
    ],
)
async def test_llm_errors_fail_the_crew_with_the_right_kind(
    chat: FakeChatServer, reply: ChatReply, error: type[ExecutorError]
) -> None:
    chat.script(reply)
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": "d"}])
    with pytest.raises(error):
        await crew.execute({})
    # crewai retries a failed call itself and gets the echo answer the second time: the crew
    # still fails (a failed call is never hidden behind a later success)
    assert 1 <= len(chat.requests) <= 2


async def test_a_wrong_api_key_is_permanent_and_never_shown(
    chat: FakeChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aipartnerupflow.core.settings import reload_settings

    monkeypatch.setenv("AIPARTNERUPFLOW_CREWAI_API_KEY", "sk-wrong-key-123456")
    reload_settings()
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": "d"}])
    with pytest.raises(PermanentError, match="refused the API key") as caught:
        await crew.execute({})
    assert "sk-wrong-key-123456" not in str(caught.value)


async def test_registered_tools_are_given_to_the_agent(chat: FakeChatServer) -> None:
    from crewai.tools import BaseTool

    calls: list[str] = []

    class Lookup(BaseTool):
        name: str = "lookup"
        description: str = "Looks a word up."

        def _run(self, word: str) -> str:
            calls.append(word)
            return f"{word} means small flying insect"

    register_tool("lookup", Lookup)
    try:
        chat.script(
            ChatReply.tool_call("lookup", {"word": "bee"}),
            ChatReply.text("a bee is a small flying insect"),
        )
        crew = CrewManager(
            agents=[{"role": "Lexicographer", "goal": "Define words", "tools": ["lookup"]}],
            tasks=[{"description": "Define bee"}],
        )
        result = await crew.execute({})
    finally:
        unregister_tool("lookup")
    assert calls == ["bee"]
    assert result["output"] == "a bee is a small flying insect"
    assert chat.requests[0]["tools"][0]["function"]["name"] == "lookup"


async def test_unknown_tool_is_rejected_before_any_request(chat: FakeChatServer) -> None:
    crew = CrewManager(
        agents=[{"role": "A", "goal": "g", "tools": ["nope"]}], tasks=[{"description": "d"}]
    )
    with pytest.raises(InputValidationError, match="no tool named 'nope'"):
        await crew.execute({})
    assert chat.requests == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"agents": [], "tasks": [{"description": "d"}]}, "params.agents"),
        ({"agents": [{"goal": "g"}], "tasks": [{"description": "d"}]}, "params.agents[0].role"),
        ({"agents": [{"role": "A", "goal": "g"}], "tasks": [{}]}, "params.tasks[0].description"),
        (
            {"agents": [{"role": "A", "goal": "g"}], "tasks": [{"description": "d", "agent": "B"}]},
            "params.tasks[0].agent",
        ),
        (
            {
                "agents": [{"role": "A", "goal": "g"}, {"role": "B", "goal": "g"}],
                "tasks": [{"description": "d"}],
            },
            "params.tasks[0].agent",
        ),
        (
            {
                "agents": [{"role": "A", "goal": "g", "llm": {"base_url": "http://evil"}}],
                "tasks": [{"description": "d"}],
            },
            "params.agents[0].llm.base_url",
        ),
        (
            {
                "agents": [{"role": "A", "goal": "g", "llm": {"temperature": float("nan")}}],
                "tasks": [{"description": "d"}],
            },
            "params.agents[0].llm.temperature",
        ),
        (
            {"agents": [{"role": "A\x00", "goal": "g"}], "tasks": [{"description": "d"}]},
            "params.agents[0].role",
        ),
        (
            {
                "agents": [{"role": "A", "goal": "g"}],
                "tasks": [
                    {"description": "d", "context": ["later"]},
                    {"name": "later", "description": "e"},
                ],
            },
            "params.tasks[0].context",
        ),
        ({"agents": [{"role": "A", "goal": "g"}]}, "params.tasks"),
    ],
)
def test_bad_crew_json_names_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        CrewManager(**params)
    assert str(caught.value).startswith(field), str(caught.value)


async def test_inputs_must_be_an_object() -> None:
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": "d"}])
    with pytest.raises(InputValidationError, match="inputs must be an object"):
        await crew.execute({...})  # type: ignore[arg-type]


async def test_cancelling_ends_the_run(chat: FakeChatServer) -> None:
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": HANG}])
    before = ROUTER.hanging
    run = asyncio.ensure_future(crew.execute({}))
    for _ in range(1200):
        if ROUTER.hanging > before:
            break
        await asyncio.sleep(0.05)
    assert ROUTER.hanging > before
    released = ROUTER.released
    await crew.cancel()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    for _ in range(200):  # the request in flight was aborted: the server sees it go
        if ROUTER.released > released:
            break
        await asyncio.sleep(0.05)
    assert ROUTER.released > released


async def test_cancel_between_tasks_stops_before_the_next_one(chat: FakeChatServer) -> None:
    from aipartnerupflow.core.errors import TaskCancelledError

    crew = CrewManager(
        agents=[{"role": "A", "goal": "g"}],
        tasks=[{"description": "first"}, {"description": "second"}],
    )
    chat.script(ChatReply.text(answer("one")), ChatReply.text(answer("two")))
    task = asyncio.ensure_future(crew.execute({}))
    for _ in range(1200):  # cancel once the first request has been answered
        if len(chat.requests) >= 1:
            break
        await asyncio.sleep(0.01)
    await crew.cancel()
    with pytest.raises(TaskCancelledError, match="cancelled"):
        await task
    assert len(chat.requests) == 1  # the second task never asked the LLM


async def test_a_missing_placeholder_is_named_before_any_request(chat: FakeChatServer) -> None:
    crew = CrewManager(**TWO_AGENTS)
    with pytest.raises(InputValidationError, match=r"inputs\.topic: .*uses \{topic\}"):
        await crew.execute({"other": 1})
    assert chat.requests == []


async def test_hostile_inputs_are_refused_or_passed_through(chat: FakeChatServer) -> None:
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": "d {x}"}])
    deep: Any = "leaf"
    for _ in range(1000):
        deep = [deep]
    with pytest.raises(InputValidationError, match="nested deeper"):
        await crew.execute({"x": deep})
    chat.script(ChatReply.text(answer("ok")))
    result = await crew.execute({"x": "tab\\there \u2603 " + "y" * 10_000, "null": None})
    assert result["output"] == "ok"
    assert "\u2603" in prompts(chat)[0]


async def test_batch_checks_every_crew_before_the_first_runs(chat: FakeChatServer) -> None:
    from aipartnerupflow.extensions.crewai import BatchManager

    batch = BatchManager(
        works={
            "a": {"agents": [{"role": "A", "goal": "g"}], "tasks": [{"description": "d"}]},
            "b": {"agents": [{"role": "B", "goal": "g"}], "tasks": [{"description": "{need}"}]},
        }
    )
    with pytest.raises(InputValidationError, match=r"inputs\.need"):
        await batch.execute({})
    assert chat.requests == []


async def test_no_api_key_is_a_configuration_error(
    chat: FakeChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aipartnerupflow.core.errors import ConfigurationError
    from aipartnerupflow.core.settings import reload_settings

    monkeypatch.delenv("AIPARTNERUPFLOW_CREWAI_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    reload_settings()
    crew = CrewManager(agents=[{"role": "A", "goal": "g"}], tasks=[{"description": "d"}])
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_CREWAI_API_KEY"):
        await crew.execute({})
    assert chat.requests == []
