"""SendMessage / SendStreamingMessage: a task tree runs and reports through A2A."""

from __future__ import annotations

from typing import Any

from a2a.types import GetTaskRequest, TaskState
from a2a_helpers import chain, collect, in_process, send_request
from google.protobuf.json_format import MessageToDict

from aipartnerupflow.api.convert import from_value


def _artifacts(task: Any) -> dict[str, Any]:
    return {a.artifact_id: from_value(a.parts[0].data) for a in task.artifacts}


async def test_blocking_send_returns_completed_task_with_one_artifact_per_task() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        events = await collect(client.send_message(send_request(chain())))
        assert [e.WhichOneof("payload") for e in events] == ["task"]
        task = events[0].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.context_id == "root"
        assert _artifacts(task) == {
            "root": {"echo": {"text": "root"}},
            "a": {"echo": {"text": "a"}},
            "b": {"echo": {"text": "b", "a": {"echo": {"text": "a"}}}},  # a's result merged in
        }
        stored = await client.get_task(GetTaskRequest(id=task.id))
        assert stored.status.state == TaskState.TASK_STATE_COMPLETED
        assert {a.name for a in stored.artifacts} == {"root", "a", "b"}


async def test_stream_reports_every_transition_and_ends_with_the_terminal_state() -> None:
    async with in_process() as server:
        client = await server.client()
        events = await collect(client.send_message(send_request(chain("s-"))))
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task"
    assert kinds[-1] == "status_update"
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    updates = [
        MessageToDict(e.status_update.metadata)["aipartnerupflow_event"]
        for e in events[:-1]
        if e.WhichOneof("payload") == "status_update"
    ]
    statuses = [(u["name"], u["status"]) for u in updates if u["event"] == "task_status"]
    for name in ("root", "a", "b"):
        assert (name, "in_progress") in statuses
        assert (name, "completed") in statuses
    # b depends on a: a completes before b starts
    assert statuses.index(("a", "completed")) < statuses.index(("b", "in_progress"))
    assert any(u["event"] == "task_progress" and u["progress"] == 0.5 for u in updates)
    artifact_ids = [
        e.artifact_update.artifact.artifact_id
        for e in events
        if e.WhichOneof("payload") == "artifact_update"
    ]
    assert sorted(artifact_ids) == ["s-a", "s-b", "s-root"]


async def test_failed_task_fails_the_a2a_task_with_the_error_in_the_status_message() -> None:
    tasks = [
        {"id": "f-root", "name": "root", "schemas": {"method": "a2a_test_echo"}},
        {
            "id": "f-bad",
            "name": "bad",
            "parent_id": "f-root",
            "schemas": {"method": "a2a_test_fail"},
            "inputs": {"message": "disk on fire"},
        },
    ]
    async with in_process() as server:
        client = await server.client()
        events = await collect(client.send_message(send_request(tasks)))
    final = events[-1].status_update.status
    assert final.state == TaskState.TASK_STATE_FAILED
    text = final.message.parts[0].text
    assert "disk on fire" in text
    assert "bad" in text


async def test_context_id_names_the_root_task_and_a_reused_one_is_refused() -> None:
    tasks = [{"name": "solo", "schemas": {"method": "a2a_test_echo"}}]
    async with in_process() as server:
        client = await server.client(streaming=False)
        first = (await collect(client.send_message(send_request(tasks))))[0].task
        tm = server.app.state.task_manager
        root = await tm.task_repository.get_task_by_id(first.context_id)
        assert root is not None
        assert root.name == "solo"
        assert root.status == "completed"
        again = await server.rpc(
            "SendMessage",
            {
                "message": {
                    "messageId": "m2",
                    "role": "ROLE_USER",
                    "contextId": first.context_id,
                    "parts": [{"data": {"tasks": tasks}}],
                }
            },
        )
    error = again.json()["error"]
    assert error["code"] == -32602
    assert "already exists" in error["message"]
