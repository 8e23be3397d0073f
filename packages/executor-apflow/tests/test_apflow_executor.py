"""apflow_api_executor against a real second aipartnerupflow instance (our A2A server under
uvicorn on loopback, its own DuckDB file, JWT auth) and a generic a2a-sdk agent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import Client, ClientConfig, create_client
from a2a.types import ListTasksRequest, TaskState

from aipartnerupflow.core.context import TaskContext, _set_current
from aipartnerupflow.core.errors import (
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
)
from aipartnerupflow.core.events import TaskEvent
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.apflow import ApflowApiExecutor
from aipartnerupflow.extensions.apflow.errors import RemoteRunError
from aipartnerupflow.extensions.apflow.request import run_key

from .remote import GenericAgentServer, RemoteInstance, Signals

SRC = Path(__file__).resolve().parents[1] / "src"


def tree(prefix: str = "") -> list[dict[str, Any]]:
    return [
        {
            "id": "root",
            "name": "root",
            "schemas": {"method": "apflow_test_echo"},
            "inputs": {"text": f"{prefix}root"},
        },
        {
            "id": "a",
            "name": "a",
            "parent_id": "root",
            "schemas": {"method": "apflow_test_echo"},
            "inputs": {"text": f"{prefix}a"},
        },
        {
            "id": "b",
            "name": "b",
            "parent_id": "root",
            "dependencies": ["a"],
            "schemas": {"method": "apflow_test_echo"},
            "inputs": {"text": f"{prefix}b"},
        },
    ]


def hang_tree(gate: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "h",
            "name": "hang",
            "schemas": {"method": "apflow_test_hang"},
            "inputs": {"gate": gate},
        }
    ]


def fail_tree(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "f",
            "name": "breaks",
            "schemas": {"method": "apflow_test_fail"},
            "inputs": {"message": f"{prefix}boom"},
        }
    ]


def local(inputs: dict[str, Any], task_id: str | None = None) -> dict[str, Any]:
    """The local task; a fresh id by default (a reused id re-attaches to its old run)."""
    return {
        "id": task_id or f"local-{uuid.uuid4().hex[:12]}",
        "name": "delegate",
        "schemas": {"method": "apflow_api_executor"},
        "inputs": inputs,
    }


async def wait_thread_event(name: str, table: dict[str, Any]) -> None:
    event = Signals.event(table, name)
    assert await asyncio.to_thread(event.wait, 60), f"remote signal {name!r} never came"


@pytest.fixture
async def remote_client(remote: RemoteInstance, token: str) -> AsyncIterator[Client]:
    """A plain a2a-sdk client of the remote instance, to check what happened there."""
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = await create_client(remote.url, client_config=ClientConfig(httpx_client=http))
    try:
        yield client
    finally:
        await client.close()
        await http.aclose()


async def remote_tasks(client: Client, key: str) -> list[Any]:
    found = await client.list_tasks(ListTasksRequest(context_id=key))
    return [t for t in found.tasks if t.context_id == key]


async def stored_remote_tasks(client: Client, key: str) -> list[Any]:
    """The remote A2A tasks of ``key``, once stored (written just after the tree starts)."""
    for _ in range(500):
        found = await remote_tasks(client, key)
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no remote task of context {key} was stored")


async def run_with_events(
    manager: TaskManager, tasks: list[dict[str, Any]]
) -> tuple[Any, list[TaskEvent]]:
    events: list[TaskEvent] = []
    async with manager.subscribe() as sub:
        run = asyncio.create_task(manager.run_tasks(tasks))

        async def drain() -> None:
            async for event in sub:
                events.append(event)
                if event.kind == "tree_finished":
                    return

        await asyncio.wait_for(drain(), 120)
        result = await asyncio.wait_for(run, 120)
    return result, events


# -- running a tree remotely --------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
async def test_tree_runs_on_the_remote_instance(
    manager: TaskManager, remote: RemoteInstance, token: str, streaming: bool
) -> None:
    inputs = {
        "base_url": remote.url,
        "auth_token": token,
        "tasks": tree(f"s{streaming}-"),
        "streaming": streaming,
        "poll_interval": 0.05,
    }
    task = local(inputs)
    result, events = await run_with_events(manager, [task])
    outcome = result.task(task["id"])
    assert outcome.status == "completed", outcome.error
    out = outcome.result
    assert out["results"] == {
        "root": {"echo": {"text": f"s{streaming}-root"}},
        "a": {"echo": {"text": f"s{streaming}-a"}},
        "b": {"echo": {"text": f"s{streaming}-b"}},
    }
    assert {t["id"]: t["status"] for t in out["tasks"]} == {
        "root": "completed",
        "a": "completed",
        "b": "completed",
    }
    assert out["remote"]["state"] == "TASK_STATE_COMPLETED"
    assert out["remote"]["root_task_id"] == run_key(task["id"], 1)
    progress = [e for e in events if e.kind == "task_progress" and e.task_id == task["id"]]
    assert progress, "no remote progress was relayed"
    assert progress[-1].progress == pytest.approx(1.0)


async def test_original_field_names_still_work(
    manager: TaskManager, remote: RemoteInstance, token: str
) -> None:
    inputs = {
        "base_url": remote.url + "/",
        "auth_token": token,
        "method": "tasks.execute",
        "params": {"tasks": tree("orig-")[:1]},
        "wait_for_completion": True,
        "use_streaming": False,
        "poll_interval": 0.05,
        "timeout": 60,
    }
    task = local(inputs)
    result = await manager.run_tasks([task])
    outcome = result.task(task["id"])
    assert outcome.status == "completed", outcome.error
    assert outcome.result["results"] == {"root": {"echo": {"text": "orig-root"}}}


@pytest.mark.parametrize("streaming", [True, False])
async def test_without_waiting_returns_the_remote_ids(
    remote: RemoteInstance, token: str, remote_client: Client, streaming: bool
) -> None:
    gate = f"nowait-{streaming}"
    _set_current(TaskContext(gate, gate, "delegate", None, 1))
    try:
        out = await ApflowApiExecutor().execute(
            {
                "base_url": remote.url,
                "auth_token": token,
                "tasks": hang_tree(gate),
                "wait": False,
                "streaming": streaming,
            }
        )
    finally:
        _set_current(None)
    try:
        assert out["submitted"] is True
        key = run_key(gate, 1)
        assert out["remote"]["context_id"] == key
        found = await remote_tasks(remote_client, key)
        assert [t.id for t in found] == [out["remote"]["task_id"]]
        assert found[0].status.state not in {
            TaskState.TASK_STATE_COMPLETED,
            TaskState.TASK_STATE_FAILED,
            TaskState.TASK_STATE_CANCELED,
        }, "it waited for the end"
    finally:
        Signals.event(Signals.cancelled, f"release:{gate}").set()


async def test_remote_failure_fails_the_local_task_with_its_error(
    manager: TaskManager, remote: RemoteInstance, token: str
) -> None:
    tasks = [
        {
            "id": "f",
            "name": "breaks",
            "schemas": {"method": "apflow_test_fail"},
            "inputs": {"message": "disk on fire"},
        }
    ]
    task = local({"base_url": remote.url, "auth_token": token, "tasks": tasks})
    result = await manager.run_tasks([task])
    outcome = result.task(task["id"])
    assert outcome.status == "failed"
    assert "disk on fire" in (outcome.error or "")
    assert "breaks" in (outcome.error or "")


async def test_remote_validation_error_is_permanent(remote: RemoteInstance, token: str) -> None:
    tasks = [{"id": "x", "name": "x", "schemas": {"method": "no_such_executor_here"}}]
    with pytest.raises(PermanentError, match="no_such_executor_here"):
        await ApflowApiExecutor().execute(
            {"base_url": remote.url, "auth_token": token, "tasks": tasks}
        )


async def test_a_refused_token_is_a_permanent_error(remote: RemoteInstance) -> None:
    with pytest.raises(PermanentError) as caught:
        await ApflowApiExecutor().execute(
            {"base_url": remote.url, "auth_token": "not-a-valid-jwt", "tasks": tree()[:1]}
        )
    assert "not-a-valid-jwt" not in str(caught.value)


# -- cancellation -------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
async def test_cancelling_the_local_task_cancels_the_remote_tree(
    manager: TaskManager,
    remote: RemoteInstance,
    token: str,
    remote_client: Client,
    streaming: bool,
) -> None:
    gate = f"cancel-{streaming}"
    inputs = {
        "base_url": remote.url,
        "auth_token": token,
        "tasks": hang_tree(gate),
        "streaming": streaming,
        "poll_interval": 0.05,
    }
    run = asyncio.create_task(manager.run_tasks([local(inputs, task_id=gate)]))
    await wait_thread_event(gate, Signals.started)
    await manager.cancel_task(gate)
    result = await asyncio.wait_for(run, 120)
    assert result.task(gate).status == "cancelled"
    # on the remote side: the executor was cancelled and the A2A task is CANCELED
    await wait_thread_event(gate, Signals.cancelled)
    found = await remote_tasks(remote_client, run_key(gate, 1))
    assert len(found) == 1
    for _ in range(500):
        if found[0].status.state == TaskState.TASK_STATE_CANCELED:
            break
        await asyncio.sleep(0.02)
        found = await remote_tasks(remote_client, run_key(gate, 1))
    assert found[0].status.state == TaskState.TASK_STATE_CANCELED


async def test_timeout_cancels_the_remote_tree(
    manager: TaskManager, remote: RemoteInstance, token: str
) -> None:
    gate = "timeout"
    inputs = {"base_url": remote.url, "auth_token": token, "tasks": hang_tree(gate), "timeout": 1.0}
    result = await manager.run_tasks([local(inputs, task_id=gate)])
    outcome = result.task(gate)
    assert outcome.status == "failed"
    assert "did not finish within 1 s" in (outcome.error or "")
    await wait_thread_event(gate, Signals.cancelled)


# -- re-attach after a crash --------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from aipartnerupflow.core.context import TaskContext, _set_current
    from aipartnerupflow.extensions.apflow import ApflowApiExecutor

    async def main():
        _set_current(TaskContext("crashy", "crashy", "delegate", None, 1))
        await ApflowApiExecutor().execute({"base_url": sys.argv[1], "auth_token": sys.argv[2],
            "tasks": [{"id": "h", "name": "hang", "schemas": {"method": "apflow_test_hang"},
                       "inputs": {"gate": "crash"}}]})

    asyncio.run(main())
    """
)


async def test_a_resumed_attempt_reattaches_instead_of_submitting_again(
    remote: RemoteInstance, token: str, remote_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aipartnerupflow.extensions.apflow.remote import RemoteRun

    env = {**os.environ, "AIPARTNERUPFLOW_APFLOW_ALLOW_PRIVATE": "true"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, remote.url, token], env=env)
    try:
        await wait_thread_event("crash", Signals.started)
    finally:
        child.send_signal(signal.SIGKILL)  # the local process dies without cleaning up
        child.wait()
    key = run_key("crashy", 1)
    assert len(await stored_remote_tasks(remote_client, key)) == 1
    # the engine resumes an interrupted task as its next attempt (attempts count): the new
    # attempt must find the run of the one before, still going, and not submit again
    locate = RemoteRun.locate

    async def locate_then_release(self: RemoteRun, *args: Any) -> bool:
        attached = await locate(self, *args)
        Signals.event(Signals.cancelled, "release:crash").set()  # the remote run may end now
        return attached

    monkeypatch.setattr(RemoteRun, "locate", locate_then_release)
    _set_current(TaskContext("crashy", "crashy", "delegate", None, 2))
    try:
        out = await ApflowApiExecutor().execute(
            {
                "base_url": remote.url,
                "auth_token": token,
                "tasks": hang_tree("crash"),
                "poll_interval": 0.05,
            }
        )
    finally:
        _set_current(None)
    assert out["remote"]["reattached"] is True
    assert out["results"] == {"h": {"released": "crash"}}
    assert len(await remote_tasks(remote_client, key)) == 1
    assert Signals.runs["crash"] == 1, "the remote tree ran twice"


async def test_an_ended_run_is_not_reattached(
    remote: RemoteInstance, token: str, remote_client: Client
) -> None:
    """A rerun of the local tree counts attempts from 1 again, and a retry follows a failed or
    cancelled run: an ended remote run is never taken for the new one."""
    inputs = {"base_url": remote.url, "auth_token": token, "tasks": tree("again-")}
    _set_current(TaskContext("again", "again", "delegate", None, 1))
    try:
        first = await ApflowApiExecutor().execute(inputs)
        second = await ApflowApiExecutor().execute(inputs)
    finally:
        _set_current(None)
    assert second["results"] == first["results"]
    assert second["remote"]["task_id"] != first["remote"]["task_id"]
    assert "reattached" not in second["remote"]
    assert second["remote"]["context_id"] == run_key("again", 1, 1)
    assert Signals.runs["again-a"] == 2
    assert len(await remote_tasks(remote_client, run_key("again", 1, 0))) == 1
    assert len(await remote_tasks(remote_client, run_key("again", 1, 1))) == 1


_ENGINE_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.storage import create_session

    async def main():
        engine = TaskManager(create_session(sys.argv[1]))
        await engine.run_tasks([json.loads(sys.argv[2])])

    asyncio.run(main())
    """
)


async def test_a_run_that_ended_while_the_local_process_was_dead_is_taken_not_rerun(
    remote: RemoteInstance, token: str, remote_client: Client, tmp_path: Path
) -> None:
    """The whole path through the engine: a local engine (its own DuckDB file, in a child
    process) delegates a tree and is killed while it runs there; the remote run then ends.
    Resuming the local tree takes that run's outcome instead of running the tree again."""
    url = f"duckdb:///{tmp_path / 'local.duckdb'}"
    task = local({"base_url": remote.url, "auth_token": token, "tasks": hang_tree("e2e")}, "e2e")
    task["retry"] = {"max_attempts": 2}  # a resume counts as an attempt (engine rule)
    env = {**os.environ, "AIPARTNERUPFLOW_APFLOW_ALLOW_PRIVATE": "true"}
    child = subprocess.Popen([sys.executable, "-c", _ENGINE_CHILD, url, json.dumps(task)], env=env)
    try:
        await wait_thread_event("e2e", Signals.started)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    Signals.event(Signals.cancelled, "release:e2e").set()  # the remote run ends on its own
    key = run_key("e2e", 1)
    for _ in range(500):
        found = await remote_tasks(remote_client, key)
        if found and found[0].status.state == TaskState.TASK_STATE_COMPLETED:
            break
        await asyncio.sleep(0.02)
    assert found[0].status.state == TaskState.TASK_STATE_COMPLETED

    engine = TaskManager(create_session(url))
    try:
        resumed = await engine.resume_interrupted()
    finally:
        await engine.close()
    assert [r.root_id for r in resumed] == ["e2e"]
    outcome = resumed[0].task("e2e")
    assert outcome.status == "completed", outcome.error
    assert outcome.result["remote"]["reattached"] is True
    assert outcome.result["remote"]["context_id"] == key
    assert outcome.result["results"] == {"h": {"released": "e2e"}}
    assert Signals.runs["e2e"] == 1, "the remote tree ran twice"
    assert len(await remote_tasks(remote_client, run_key("e2e", 2))) == 0


async def test_an_interrupted_attempt_whose_run_failed_fails_then_retries_anew(
    remote: RemoteInstance, token: str, remote_client: Client
) -> None:
    """The outcome of the interrupted attempt's run is that attempt's, also a failure; the
    attempt after it is a fresh one with its own run."""
    inputs = {"base_url": remote.url, "auth_token": token, "tasks": fail_tree("lost-")}
    _set_current(TaskContext("lost", "lost", "delegate", None, 1))
    try:
        with pytest.raises(RemoteRunError):
            await ApflowApiExecutor().execute(inputs)
    finally:
        _set_current(None)
    # the process died after that run failed: the engine resumes the task as attempt 2
    _set_current(TaskContext("lost", "lost", "delegate", None, 2, interrupted_attempt=1))
    try:
        with pytest.raises(RemoteRunError):
            await ApflowApiExecutor().execute(inputs)
    finally:
        _set_current(None)
    assert len(await remote_tasks(remote_client, run_key("lost", 1))) == 1
    assert len(await remote_tasks(remote_client, run_key("lost", 2))) == 0, "submitted again"
    # a retry of attempt 2 (nothing interrupted) submits a new run
    _set_current(TaskContext("lost", "lost", "delegate", None, 3))
    try:
        with pytest.raises(RemoteRunError):
            await ApflowApiExecutor().execute(inputs)
    finally:
        _set_current(None)
    assert len(await remote_tasks(remote_client, run_key("lost", 3))) == 1


# -- any A2A agent ------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
async def test_a_generic_agent_returns_its_artifacts(
    generic_agent: GenericAgentServer, streaming: bool
) -> None:
    out = await ApflowApiExecutor().execute(
        {
            "base_url": generic_agent.url,
            "text": "hello",
            "data": {"n": 1},
            "streaming": streaming,
            "poll_interval": 0.05,
        }
    )
    assert out["text"] == "ran: hello"
    names = [a["name"] for a in out["artifacts"]]
    assert names == ["answer", "data"]
    assert out["artifacts"][1]["parts"][0]["data"] == {"got": {"n": 1}}
    assert json.loads(json.dumps(out)) == out


async def test_a_generic_agent_failure_fails_with_its_message(
    generic_agent: GenericAgentServer,
) -> None:
    with pytest.raises(RemoteRunError, match="the agent gave up"):
        await ApflowApiExecutor().execute({"base_url": generic_agent.url, "text": "fail please"})


async def test_agent_card_url_is_accepted(generic_agent: GenericAgentServer) -> None:
    out = await ApflowApiExecutor().execute(
        {"agent_card_url": generic_agent.url + "/.well-known/agent-card.json", "text": "card"}
    )
    assert out["text"] == "ran: card"


# -- policy, inputs, secrets --------------------------------------------------------------------


async def test_loopback_is_denied_by_default(
    monkeypatch: pytest.MonkeyPatch, remote: RemoteInstance, token: str
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_APFLOW_ALLOW_PRIVATE")
    reload_settings()
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_APFLOW_ALLOW_PRIVATE"):
        await ApflowApiExecutor().execute(
            {"base_url": remote.url, "auth_token": token, "tasks": tree()}
        )


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"tasks": [{"id": "x"}]}, "base_url"),
        ({"base_url": "http://127.0.0.1:1"}, "tasks"),
        ({"base_url": "http://127.0.0.1:1", "tasks": []}, "tasks"),
        ({"base_url": "http://127.0.0.1:1", "tasks": [1]}, "tasks[0]"),
        ({"base_url": "http://127.0.0.1:1", "tasks": [{"x": float("nan")}]}, "tasks"),
        ({"base_url": "http://127.0.0.1:1", "text": "a\x00b"}, "text"),
        ({"base_url": "http://127.0.0.1:1", "text": "x", "timeout": 0}, "timeout"),
        ({"base_url": "http://127.0.0.1:1", "text": "x", "auth_token": "a b"}, "auth_token"),
        ({"base_url": "http://127.0.0.1:1", "text": "x", "streaming": "yes"}, "streaming"),
        ({"base_url": "http://127.0.0.1:1", "method": "tasks.delete", "params": {}}, "method"),
        ({"base_url": "http://127.0.0.1:1", "tasks": [{"id": "r"}], "text": "x"}, "tasks"),
    ],
)
async def test_bad_inputs_are_refused_before_any_connection(
    inputs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputValidationError, match=field.replace("[", r"\[")):
        await ApflowApiExecutor().execute(inputs)


async def test_deeply_nested_tasks_are_refused() -> None:
    deep: Any = {}
    for _ in range(500):
        deep = {"d": deep}
    with pytest.raises(InputValidationError, match="tasks"):
        await ApflowApiExecutor().execute(
            {"base_url": "http://127.0.0.1:1", "tasks": [{"id": "r", "inputs": deep}]}
        )


async def test_unreachable_remote_is_retryable() -> None:
    from aipartnerupflow.core.errors import RetryableError

    with pytest.raises(RetryableError):
        await ApflowApiExecutor().execute({"base_url": "http://127.0.0.1:9", "text": "x"})


async def test_token_never_in_result_error_or_events(
    manager: TaskManager, remote: RemoteInstance, token: str
) -> None:
    tasks = [
        {
            "id": "f",
            "name": "leaky",
            "schemas": {"method": "apflow_test_fail"},
            "inputs": {"message": f"token was {token}"},
        }
    ]
    task = local({"base_url": remote.url, "auth_token": token, "tasks": tasks})
    result, events = await run_with_events(manager, [task])
    outcome = result.task(task["id"])
    assert outcome.status == "failed"
    assert "token was" in (outcome.error or "")
    assert token not in (outcome.error or "")
    assert token not in json.dumps([e.message for e in events] + [e.error for e in events])


# -- two instances ------------------------------------------------------------------------------


async def test_one_instance_delegates_a_subtree_to_another(
    remote: RemoteInstance, token: str, tmp_path: Path
) -> None:
    """A front instance (own DuckDB file) runs apflow_api_executor, which runs the subtree on
    the remote instance (another DuckDB file); the front's A2A client sees the remote results."""
    from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest
    from google.protobuf.json_format import MessageToDict, ParseDict
    from google.protobuf.struct_pb2 import Value

    front = RemoteInstance(f"duckdb:///{tmp_path / 'front.duckdb'}").start()
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    try:
        client = await create_client(front.url, client_config=ClientConfig(httpx_client=http))
        delegate = {
            "id": "delegate",
            "name": "delegate",
            "schemas": {"method": "apflow_api_executor"},
            "inputs": {"base_url": remote.url, "auth_token": token, "tasks": tree("front-")},
        }
        message = Message(
            role=Role.ROLE_USER,
            message_id=uuid.uuid4().hex,
            parts=[Part(data=ParseDict({"tasks": [delegate]}, Value()))],
        )
        task_id = ""
        async for event in client.send_message(SendMessageRequest(message=message)):
            if event.WhichOneof("payload") == "task":
                task_id = event.task.id
            elif event.WhichOneof("payload") == "status_update":
                task_id = event.status_update.task_id
        task = await client.get_task(GetTaskRequest(id=task_id))
        await client.close()
    finally:
        await http.aclose()
        front.stop()
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    (artifact,) = [a for a in task.artifacts if a.artifact_id == "delegate"]
    result = MessageToDict(artifact.parts[0].data)
    assert result["results"]["b"] == {"echo": {"text": "front-b"}}
    assert result["remote"]["state"] == "TASK_STATE_COMPLETED"


async def test_credentials_are_not_sent_to_a_host_the_card_points_elsewhere(
    generic_agent: GenericAgentServer,
) -> None:
    # the card is fetched from "localhost"; its interface says 127.0.0.1: another origin
    card_url = generic_agent.url.replace("127.0.0.1", "localhost")
    with pytest.raises(PermanentError, match="other hosts"):
        await ApflowApiExecutor().execute(
            {"base_url": card_url, "auth_token": "s3cret-for-another-host", "text": "x"}
        )
    out = await ApflowApiExecutor().execute({"base_url": card_url, "text": "no credentials"})
    assert out["text"] == "ran: no credentials"


async def test_a_run_cancelled_on_the_remote_side_fails_the_local_task(
    remote: RemoteInstance, token: str, remote_client: Client
) -> None:
    from a2a.types import CancelTaskRequest

    gate = "remote-cancel"
    _set_current(TaskContext(gate, gate, "delegate", None, 1))
    try:
        run = asyncio.create_task(
            ApflowApiExecutor().execute(
                {"base_url": remote.url, "auth_token": token, "tasks": hang_tree(gate)}
            )
        )
    finally:
        _set_current(None)
    await wait_thread_event(gate, Signals.started)
    (found,) = await stored_remote_tasks(remote_client, run_key(gate, 1))
    await remote_client.cancel_task(CancelTaskRequest(id=found.id))
    with pytest.raises(RemoteRunError, match="cancelled on the remote side"):
        await asyncio.wait_for(run, 60)
