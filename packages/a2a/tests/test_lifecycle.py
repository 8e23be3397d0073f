"""Persistence across restarts, re-runs of a tree, and many requests in a row."""

from __future__ import annotations

from pathlib import Path

import pytest
from a2a.types import (
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    TaskState,
)
from a2a_helpers import (
    SECRET,
    Gates,
    chain,
    collect,
    in_process,
    over_http,
    send_request,
    token,
)
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Value


def rerun_request(root_id: str, mode: str = "all") -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(
            role=Role.ROLE_USER,
            message_id=f"rerun-{mode}",
            context_id=root_id,
            parts=[Part(data=ParseDict({"rerun": mode}, Value()))],
        )
    )


async def test_a2a_records_survive_a_restart_and_stale_runs_are_reconciled(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'tasks.duckdb'}"
    gated = [
        {
            "id": "st-root",
            "name": "root",
            "schemas": {"method": "a2a_test_gate"},
            "inputs": {"gate": "st"},
        },
    ]
    async with in_process(database_url=url) as server:
        client = await server.client(streaming=False)
        done = (await collect(client.send_message(send_request(chain("keep-")))))[0].task
        pending = (
            await collect(
                client.send_message(send_request(gated, return_immediately=True, message_id="m2"))
            )
        )[0].task
        await Gates.started_event("st").wait()
    async with in_process(database_url=url, resume_interrupted=False) as server:
        client = await server.client(streaming=False)
        again = await client.get_task(GetTaskRequest(id=done.id))
        assert again.status.state == TaskState.TASK_STATE_COMPLETED
        assert {a.artifact_id for a in again.artifacts} == {"keep-root", "keep-a", "keep-b"}
        stale = await client.get_task(GetTaskRequest(id=pending.id))
        assert stale.status.state == TaskState.TASK_STATE_CANCELED
        assert "st-root" in stale.status.message.parts[0].text
        listed = await client.list_tasks(ListTasksRequest())
        assert {t.id for t in listed.tasks} == {done.id, pending.id}


async def test_a_tree_runs_again_in_its_context_as_a_new_a2a_task() -> None:
    async with in_process(jwt_secret_key=SECRET) as server:
        alice = await server.client(token("alice"), streaming=False)
        first = (await collect(alice.send_message(send_request(chain("rr-")))))[0].task
        second = (await collect(alice.send_message(rerun_request("rr-root"))))[0].task
        assert second.id != first.id
        assert second.context_id == first.context_id == "rr-root"
        assert second.status.state == TaskState.TASK_STATE_COMPLETED
        assert {a.artifact_id for a in second.artifacts} == {"rr-root", "rr-a", "rr-b"}
        runs = await alice.list_tasks(ListTasksRequest(context_id="rr-root"))
        assert {t.id for t in runs.tasks} == {first.id, second.id}
        bob = await server.rpc(
            "SendMessage",
            {
                "message": {
                    "messageId": "b1",
                    "role": "ROLE_USER",
                    "contextId": "rr-root",
                    "parts": [{"data": {"rerun": "all"}}],
                }
            },
            bearer=token("bob"),
        )
        assert bob.json()["error"]["code"] == -32001
        no_context = await server.rpc(
            "SendMessage",
            {
                "message": {
                    "messageId": "b2",
                    "role": "ROLE_USER",
                    "parts": [{"data": {"rerun": "all"}}],
                }
            },
            bearer=token("alice"),
        )
        assert no_context.json()["error"]["code"] == -32602


@pytest.mark.slow
async def test_the_server_keeps_serving_after_10000_requests() -> None:
    async with over_http() as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("many-")))))[0].task
        body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task.id}}
        headers = {"A2A-Version": "1.0"}
        for i in range(10_000):
            if i % 2:
                response = await server.http.post("/", json=body, headers=headers)
                assert response.json()["result"]["id"] == task.id
            else:
                response = await server.http.get("/system/health")
                assert response.status_code == 200
        last = await client.get_task(GetTaskRequest(id=task.id))
        assert last.status.state == TaskState.TASK_STATE_COMPLETED
