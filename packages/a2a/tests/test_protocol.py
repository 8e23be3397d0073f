"""Protocol errors, versions and bindings, checked with raw requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from a2a.types import TaskState
from a2a_helpers import chain, collect, in_process, send_request


def _send_params(parts: list[dict[str, Any]], **extra: object) -> dict[str, Any]:
    return {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": parts, **extra}}


async def test_text_part_is_refused_with_content_type_error() -> None:
    async with in_process() as server:
        response = await server.rpc("SendMessage", _send_params([{"text": "run something"}]))
        listed = await server.rpc("ListTasks", {})
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32005
    assert "data part" in error["message"]
    assert listed.json()["result"]["tasks"] == []  # nothing was left behind


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([1, 2], "must be an object"),
        ({"task": []}, "object without 'tasks'"),
        ({"tasks": []}, "non-empty array"),
        ({"tasks": [1]}, "must be an object"),
        ({"tasks": [{"name": "x"}], "extra": 1}, "unknown key"),
    ],
)
async def test_bad_data_shapes_are_invalid_params(data: object, needle: str) -> None:
    async with in_process() as server:
        response = await server.rpc("SendMessage", _send_params([{"data": data}]))
    error = response.json()["error"]
    assert error["code"] == -32602
    assert needle in error["message"]


@pytest.mark.parametrize(
    ("second", "needle"),
    [
        ({"schemas": {"method": "no_such_executor"}}, "no_such_executor"),
        ({"schemas": {"method": "a2a_test_echo"}, "dependencies": ["ghost"]}, "ghost"),
    ],
)
async def test_invalid_tree_is_invalid_params_and_writes_nothing(
    second: dict[str, Any], needle: str
) -> None:
    tasks = [
        {"id": "r", "name": "r", "schemas": {"method": "a2a_test_echo"}},
        {"id": "c", "name": "c", "parent_id": "r", **second},
    ]
    async with in_process() as server:
        response = await server.rpc("SendMessage", _send_params([{"data": {"tasks": tasks}}]))
        error = response.json()["error"]
        stored = await server.app.state.task_manager.task_repository.get_task_by_id("r")
    assert error["code"] == -32602
    assert needle in error["message"]
    assert stored is None


async def test_request_without_version_header_is_treated_as_0_3() -> None:
    async with in_process() as server:
        response = await server.rpc(
            "SendMessage", _send_params([{"data": {"tasks": chain()}}]), version=None
        )
    assert response.json()["error"]["code"] == -32009


async def test_unknown_task_is_not_found() -> None:
    async with in_process() as server:
        response = await server.rpc("GetTask", {"id": "nope"})
    assert response.json()["error"]["code"] == -32001


async def test_follow_up_message_to_a_finished_task_is_unsupported() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain()))))[0].task
        response = await server.rpc(
            "SendMessage", _send_params([{"data": {"tasks": chain("x")}}], taskId=task.id)
        )
    assert response.json()["error"]["code"] == -32004


async def test_0_3_client_message_send_runs_the_tree() -> None:
    params = {
        "message": {
            "messageId": "m03",
            "role": "user",
            "kind": "message",
            "parts": [{"kind": "data", "data": {"tasks": chain("v03-")}}],
        }
    }
    async with in_process() as server:
        response = await server.http.post(
            "/", json={"jsonrpc": "2.0", "id": "x", "method": "message/send", "params": params}
        )
    result = response.json()["result"]
    assert result["kind"] == "task"
    assert result["status"]["state"] == "completed"
    assert {a["artifactId"] for a in result["artifacts"]} == {"v03-root", "v03-a", "v03-b"}


async def test_rest_binding_send_get_and_list() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False, binding="HTTP+JSON")
        task = (await collect(client.send_message(send_request(chain("rest-")))))[0].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        got = await server.http.get(f"/tasks/{task.id}", headers={"A2A-Version": "1.0"})
        listed = await server.http.get("/tasks", headers={"A2A-Version": "1.0"})
    assert got.status_code == 200
    assert got.json()["status"]["state"] == "TASK_STATE_COMPLETED"
    assert [t["id"] for t in listed.json()["tasks"]] == [task.id]


async def test_streaming_over_json_rpc_is_server_sent_events() -> None:
    async with in_process() as server:
        response = await server.rpc(
            "SendStreamingMessage", _send_params([{"data": {"tasks": chain("sse-")}}])
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = [
        json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
    ]
    assert "task" in payloads[0]["result"]
    assert payloads[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_oversized_body_is_refused() -> None:
    async with in_process(max_body_bytes=2048) as server:
        big = [{"name": f"t{i}", "schemas": {"method": "a2a_test_echo"}} for i in range(200)]
        response = await server.rpc("SendMessage", _send_params([{"data": {"tasks": big}}]))
    assert response.status_code == 413


async def test_too_many_tasks_are_refused() -> None:
    async with in_process(max_tasks_per_request=2) as server:
        response = await server.rpc("SendMessage", _send_params([{"data": {"tasks": chain()}}]))
    assert "too many tasks" in response.json()["error"]["message"]
