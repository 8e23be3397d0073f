"""Running trees over real HTTP on loopback: return immediately, subscribe, cancel, list."""

from __future__ import annotations

import asyncio
from typing import Any

from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a_helpers import Gates, chain, collect, in_process, over_http, send_request
from google.protobuf.json_format import MessageToDict

TERMINAL = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
}


def gated(prefix: str) -> list[dict[str, Any]]:
    """root -> (g1 gate, after: depends on g1)."""
    return [
        {"id": f"{prefix}root", "name": "root", "schemas": {"method": "a2a_test_echo"}},
        {
            "id": f"{prefix}g1",
            "name": "g1",
            "parent_id": f"{prefix}root",
            "schemas": {"method": "a2a_test_gate"},
            "inputs": {"gate": prefix},
        },
        {
            "id": f"{prefix}after",
            "name": "after",
            "parent_id": f"{prefix}root",
            "dependencies": [f"{prefix}g1"],
            "schemas": {"method": "a2a_test_echo"},
        },
    ]


def state_of(event: Any) -> int | None:
    kind = event.WhichOneof("payload")
    if kind == "task":
        return int(event.task.status.state)
    if kind == "status_update":
        return int(event.status_update.status.state)
    return None


async def test_return_immediately_then_subscribe_from_a_fresh_client() -> None:
    async with over_http() as server:
        sender = await server.client(streaming=False)
        request = send_request(gated("ri-"), return_immediately=True)
        first = (await collect(sender.send_message(request)))[0].task
        assert first.status.state not in TERMINAL
        await Gates.started_event("ri-").wait()

        watcher = await server.client()
        events: list[Any] = []
        attached = asyncio.Event()

        async def watch() -> None:
            async for event in watcher.subscribe(SubscribeToTaskRequest(id=first.id)):
                events.append(event)  # the subscription starts with the current task
                attached.set()

        watching = asyncio.create_task(watch())
        await attached.wait()
        Gates.get("ri-").set()
        await watching
        assert events[0].WhichOneof("payload") == "task"
        assert state_of(events[-1]) == TaskState.TASK_STATE_COMPLETED
        names = [
            MessageToDict(e.status_update.metadata).get("aipartnerupflow_event", {}).get("name")
            for e in events
            if e.WhichOneof("payload") == "status_update"
        ]
        assert "after" in names
        final = await sender.get_task(GetTaskRequest(id=first.id))
        assert final.status.state == TaskState.TASK_STATE_COMPLETED
        assert {a.artifact_id for a in final.artifacts} == {"ri-root", "ri-g1", "ri-after"}


async def test_cancel_cascades_through_the_tree_and_is_idempotent() -> None:
    async with over_http() as server:
        client = await server.client()
        stream_events: list[Any] = []
        got_task = asyncio.Event()

        async def run() -> None:
            async for event in client.send_message(send_request(gated("cx-"))):
                stream_events.append(event)
                got_task.set()

        streaming = asyncio.create_task(run())
        await Gates.started_event("cx-").wait()
        await got_task.wait()
        task_id = stream_events[0].task.id

        other = await server.client(streaming=False)
        cancelled = await other.cancel_task(CancelTaskRequest(id=task_id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        again = await other.cancel_task(CancelTaskRequest(id=task_id))
        assert again.status.state == TaskState.TASK_STATE_CANCELED

        await streaming
        assert state_of(stream_events[-1]) == TaskState.TASK_STATE_CANCELED
        repo = server.app.state.task_manager.task_repository
        statuses = {t.name: t.status for t in await repo.get_all_tasks_in_tree("cx-root")}
        assert statuses["g1"] == "cancelled"
        assert statuses["after"] in {"cancelled", "failed"}
        assert statuses["root"] in {"completed", "cancelled"}


async def test_cancelling_a_completed_task_is_refused() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain()))))[0].task
        response = await server.rpc("CancelTask", {"id": task.id})
    assert response.json()["error"]["code"] == -32002


async def test_list_tasks_pages_with_a_cursor_and_filters() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        ids = []
        for i in range(5):
            task = (await collect(client.send_message(send_request(chain(f"p{i}-")))))[0].task
            ids.append(task.id)
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = await client.list_tasks(ListTasksRequest(page_size=2, page_token=token))
            assert page.total_size == 5
            seen.extend(t.id for t in page.tasks)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 3
        assert sorted(seen) == sorted(ids)
        assert seen == list(reversed(ids))  # newest first
        by_context = await client.list_tasks(ListTasksRequest(context_id="p3-root"))
        assert [t.id for t in by_context.tasks] == [ids[3]]
        done = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_COMPLETED))
        assert done.total_size == 5
        failed = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED))
        assert failed.total_size == 0
        bad = await server.rpc("ListTasks", {"pageToken": "garbage!"})
        assert bad.json()["error"]["code"] == -32602


async def test_a_0_3_sdk_client_runs_a_tree_over_http() -> None:
    import httpx
    from a2a.client import ClientConfig, create_client
    from a2a.types import AgentCard

    async with over_http() as server:
        card = AgentCard()
        card.CopyFrom(server.card)
        for interface in card.supported_interfaces:
            interface.protocol_version = "0.3"  # makes the SDK pick its 0.3 compat transport
        async with httpx.AsyncClient(timeout=30) as http:
            for streaming in (False, True):
                client = await create_client(
                    card,
                    client_config=ClientConfig(
                        httpx_client=http,
                        streaming=streaming,
                        supported_protocol_bindings=["JSONRPC"],
                    ),
                )
                events = await collect(
                    client.send_message(
                        send_request(chain(f"old{int(streaming)}-"), message_id=f"o{streaming}")
                    )
                )
                assert state_of(events[-1]) == TaskState.TASK_STATE_COMPLETED
                task = await client.get_task(GetTaskRequest(id=events[0].task.id))
                assert {a.artifact_id for a in task.artifacts} == {
                    f"old{int(streaming)}-root",
                    f"old{int(streaming)}-a",
                    f"old{int(streaming)}-b",
                }
                await client.close()
