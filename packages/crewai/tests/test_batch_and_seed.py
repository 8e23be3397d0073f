"""BatchManager, the seed README's two snippets, and crews as tasks of a tree."""

from __future__ import annotations

from typing import Any

import pytest

from aipartnerupflow.core.errors import ExecutorError
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import answer, prompts


async def test_batch_of_two_crews_runs_in_order_and_merges(chat: FakeChatServer) -> None:
    from aipartnerupflow.extensions.crewai import BatchManager

    chat.script(ChatReply.text(answer("collected 3 rows")), ChatReply.text(answer('{"mean": 2}')))
    batch = BatchManager(
        id="b1",
        name="Batch",
        works={
            "collect": {
                "agents": [{"role": "Collector", "goal": "Collect {what}"}],
                "tasks": [{"description": "Collect {what}", "agent": "Collector"}],
            },
            "analyse": {
                "agents": [{"role": "Analyst", "goal": "Analyze"}],
                "tasks": [{"description": "Analyze {what}", "agent": "Analyst"}],
            },
        },
    )
    result = await batch.execute({"what": "rows"})
    assert result["status"] == "success"
    assert result["id"] == "b1"
    assert result["result"] == {"collect": "collected 3 rows", "analyse": {"mean": 2}}
    assert list(result["works"]) == ["collect", "analyse"]
    assert result["token_usage"]["total_tokens"] == 30
    sent = prompts(chat)
    assert "Collect rows" in sent[0] and "Analyze rows" in sent[1]


async def test_a_failing_crew_fails_the_whole_batch(chat: FakeChatServer) -> None:
    from aipartnerupflow.extensions.crewai import BatchFailedError, BatchManager

    chat.script(ChatReply.text(answer("first ok")), ChatReply.error(400, message="bad"))
    batch = BatchManager(
        name="Atomic",
        works={
            "one": {"agents": [{"role": "A", "goal": "g"}], "tasks": [{"description": "one"}]},
            "two": {"agents": [{"role": "B", "goal": "g"}], "tasks": [{"description": "two"}]},
            "three": {"agents": [{"role": "C", "goal": "g"}], "tasks": [{"description": "three"}]},
        },
    )
    with pytest.raises(BatchFailedError, match="failed at crew 'two'") as caught:
        await batch.execute({})
    assert "first ok" not in str(caught.value)
    assert not any("three" in p for p in prompts(chat))  # later crews never start


async def test_batch_failure_in_a_tree_fails_the_task_with_nothing_merged(
    chat: FakeChatServer, task_manager: Any
) -> None:
    chat.script(ChatReply.text(answer("first ok")), ChatReply.error(400, message="refused"))
    result = await task_manager.run_tasks(
        [
            {
                "id": "batch",
                "name": "batch",
                "schemas": {"method": "batch_crewai_executor"},
                "params": {
                    "works": {
                        "one": {
                            "agents": [{"role": "A", "goal": "g"}],
                            "tasks": [{"description": "1"}],
                        },
                        "two": {
                            "agents": [{"role": "B", "goal": "g"}],
                            "tasks": [{"description": "2"}],
                        },
                    }
                },
            }
        ]
    )
    outcome = result.task("batch")
    assert outcome.status == "failed"
    assert outcome.result is None or "first ok" not in str(outcome.result)
    assert "failed at crew 'two'" in (outcome.error or "")


async def test_seed_crew_snippet(chat: FakeChatServer) -> None:
    chat.script(ChatReply.text(answer("analysis done")))
    # --- the seed README's snippet, verbatim except the {...} placeholder ---
    from aipartnerupflow.extensions.crewai import CrewManager

    # CrewAI task execution
    crew = CrewManager(
        name="Analysis Crew",
        agents=[{"role": "Analyst", "goal": "Analyze data"}],
        tasks=[{"description": "Analyze input", "agent": "Analyst"}],
    )
    result = await crew.execute(inputs={"data": [1, 2, 3]})
    # ---
    assert result["output"] == "analysis done"


async def test_seed_batch_snippet(chat: FakeChatServer) -> None:
    chat.script(ChatReply.text(answer("collected")), ChatReply.text(answer("analysed")))
    # --- the seed README's snippet, verbatim except the {...} placeholder ---
    from aipartnerupflow.extensions.crewai import BatchManager, CrewManager

    # BatchManager is a batch container - executes multiple crews as atomic operation
    batch = BatchManager(
        id="my_batch",
        name="Batch Analysis",
        works={
            "data_collection": {
                "agents": [{"role": "Collector", "goal": "Collect data"}],
                "tasks": [{"description": "Collect data", "agent": "Collector"}],
            },
            "data_analysis": {
                "agents": [{"role": "Analyst", "goal": "Analyze data"}],
                "tasks": [{"description": "Analyze data", "agent": "Analyst"}],
            },
        },
    )

    # All crews execute sequentially, results are merged
    # If any crew fails, entire batch fails (atomic)
    result = await batch.execute(inputs={"source": "sales.csv"})
    # ---
    assert CrewManager.id == "crewai_executor"
    assert result["result"] == {"data_collection": "collected", "data_analysis": "analysed"}


async def test_crew_task_in_a_tree_feeds_its_dependent(
    chat: FakeChatServer, task_manager: Any
) -> None:
    chat.script(ChatReply.text(answer('{"topic": "bees", "facts": 3}')))
    result = await task_manager.run_tasks(
        [
            {
                "id": "crew",
                "name": "crew",
                "schemas": {"method": "crewai_executor"},
                "params": {
                    "agents": [{"role": "Researcher", "goal": "Research"}],
                    "tasks": [{"description": "Research {topic}"}],
                },
                "inputs": {"topic": "bees"},
            },
        ]
    )
    crew = result.task("crew")
    assert crew.status == "completed", result.to_dict()
    assert crew.result["json"] == {"topic": "bees", "facts": 3}
    assert isinstance(crew.result["token_usage"]["total_tokens"], int)


def test_batch_errors_are_executor_errors() -> None:
    from aipartnerupflow.extensions.crewai import BatchFailedError

    assert issubclass(BatchFailedError, ExecutorError)


async def test_09_readme_crew_snippet(chat: FakeChatServer) -> None:
    """aipartnerupflow 0.9.0's README (PyPI) names the class CrewaiExecutor."""
    chat.script(ChatReply.text(answer("analysis done")))
    # --- the 0.9.0 README's snippet, verbatim except the {...} placeholder ---
    # Requires: pip install aipartnerupflow[crewai]
    from aipartnerupflow.extensions.crewai import CrewaiExecutor

    # CrewAI task execution
    crew = CrewaiExecutor(
        name="Analysis Crew",
        agents=[{"role": "Analyst", "goal": "Analyze data"}],
        tasks=[{"description": "Analyze input", "agent": "Analyst"}],
    )
    result = await crew.execute(inputs={"data": [1, 2, 3]})
    # ---
    assert result["output"] == "analysis done"


async def test_09_readme_batch_snippet(chat: FakeChatServer) -> None:
    chat.script(ChatReply.text(answer("collected")), ChatReply.text(answer("analysed")))
    # --- the 0.9.0 README's snippet, verbatim except the {...} placeholder ---
    # Requires: pip install aipartnerupflow[crewai]
    from aipartnerupflow.extensions.crewai import BatchCrewaiExecutor, CrewaiExecutor

    # BatchCrewaiExecutor is a batch container - executes multiple crews as atomic operation
    batch = BatchCrewaiExecutor(
        id="my_batch",
        name="Batch Analysis",
        works={
            "data_collection": {
                "agents": [{"role": "Collector", "goal": "Collect data"}],
                "tasks": [{"description": "Collect data", "agent": "Collector"}],
            },
            "data_analysis": {
                "agents": [{"role": "Analyst", "goal": "Analyze data"}],
                "tasks": [{"description": "Analyze data", "agent": "Analyst"}],
            },
        },
    )

    # All crews execute sequentially, results are merged
    # If any crew fails, entire batch fails (atomic)
    result = await batch.execute(inputs={"source": "sales.csv"})
    # ---
    assert CrewaiExecutor.id == "crewai_executor"
    assert result["result"] == {"data_collection": "collected", "data_analysis": "analysed"}
