"""The server through the SDK's own client over streamable HTTP, with JWT auth."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from mcp import types
from mcp.shared.exceptions import McpError

from aipartnerupflow.core.service import params_schema
from aipartnerupflow.testing.bad_inputs import CREATE_CASES, BadCreate

from . import helpers
from .helpers import data, error_text, http_session, task


def _ids() -> str:
    return uuid.uuid4().hex[:8]


async def test_tool_schemas_are_the_task_service_models(mcp_url: str) -> None:
    async with http_session(mcp_url) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert tools["tasks_run_and_wait"].inputSchema == params_schema("execute")
    assert tools["tasks_list"].inputSchema == params_schema("list")
    assert tools["tasks_cancel"].inputSchema == params_schema("cancel")
    assert tools["executors_list"].inputSchema["additionalProperties"] is False


async def test_tree_run_with_progress_and_resource_updates(mcp_url: str) -> None:
    p = _ids()
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceUpdatedNotification
        ):
            updates.append(str(message.root.params.uri))

    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    tasks = [task(f"{p}root"), task(f"{p}a", parent_id=f"{p}root")]
    tasks.append(task(f"{p}b", parent_id=f"{p}root", dependencies=[f"{p}a"]))
    async with http_session(mcp_url, on_message=on_message) as session:
        data(await session.call_tool("tasks_create", {"tasks": tasks}))
        await session.subscribe_resource(f"apflow://trees/{p}root")  # type: ignore[arg-type]
        result = data(
            await session.call_tool(
                "tasks_run_and_wait", {"task_id": f"{p}root"}, progress_callback=on_progress
            )
        )
        tree = await session.read_resource(f"apflow://trees/{p}root")  # type: ignore[arg-type]
    assert result["status"] == "completed"
    assert {t["id"] for t in result["tasks"]} == {f"{p}root", f"{p}a", f"{p}b"}
    assert seen, "no progress notifications"
    assert all(total == 3.0 for _, total, _ in seen)
    values = [v for v, _, _ in seen]
    assert values == sorted(values) and values[-1] == 3.0
    assert any(m and "completed" in m for _, _, m in seen)
    assert f"apflow://trees/{p}root" in updates
    contents = tree.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    assert '"completed"' in contents.text


async def test_create_and_run_in_background_then_read_task_resource(mcp_url: str) -> None:
    p = _ids()
    async with http_session(mcp_url) as session:
        started = data(await session.call_tool("tasks_run", {"tasks": [task(f"{p}one")]}))
        assert started["root_task_id"] == f"{p}one" and started["status"] == "started"
        for _ in range(500):
            got = data(await session.call_tool("tasks_get", {"task_id": f"{p}one"}))
            if got["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        assert got["status"] == "completed"
        read = await session.read_resource(f"apflow://tasks/{p}one")  # type: ignore[arg-type]
        assert f'"id": "{p}one"' in read.contents[0].text  # type: ignore[union-attr]


async def test_list_with_filters_and_cursor(mcp_url: str) -> None:
    p = _ids()
    user = f"lister-{p}"
    async with http_session(mcp_url, user) as session:
        for i in range(3):
            data(await session.call_tool("tasks_create", {"tasks": [task(f"{p}{i}")]}))
        first = data(await session.call_tool("tasks_list", {"limit": 2}))
        assert len(first["tasks"]) == 2 and first["next_cursor"]
        rest = data(
            await session.call_tool("tasks_list", {"limit": 2, "cursor": first["next_cursor"]})
        )
        assert len(rest["tasks"]) == 1 and rest["next_cursor"] is None
        ids = {t["id"] for t in first["tasks"] + rest["tasks"]}
        assert ids == {f"{p}0", f"{p}1", f"{p}2"}
        done = data(await session.call_tool("tasks_list", {"status": "completed"}))
        assert done["tasks"] == []
        with pytest.raises(McpError) as err:
            await session.call_tool("tasks_list", {"cursor": "not-a-cursor"})
        assert "next_cursor" in err.value.error.message


async def test_cancel_stops_a_long_run(mcp_url: str) -> None:
    p = _ids()
    helpers.STARTED.clear()
    helpers.CANCELLED.clear()
    slow = task(f"{p}slow", method=helpers.SlowExecutor.id)
    async with http_session(mcp_url) as session:
        data(await session.call_tool("tasks_run", {"tasks": [slow]}))
        assert await asyncio.to_thread(helpers.STARTED.wait, 60)
        running = data(await session.call_tool("tasks_get", {"task_id": f"{p}slow"}))
        assert running["status"] == "in_progress"
        outcome = data(await session.call_tool("tasks_cancel", {"task_id": f"{p}slow"}))
        assert outcome["outcomes"][0]["task_id"] == f"{p}slow"
        assert await asyncio.to_thread(helpers.CANCELLED.wait, 60), "the executor kept running"
        after = data(await session.call_tool("tasks_get", {"task_id": f"{p}slow"}))
        assert after["status"] == "cancelled"


async def test_cancelling_run_and_wait_request_stops_the_tree(mcp_url: str) -> None:
    """The client gives up on tasks_run_and_wait: the tree is cancelled, not left running."""
    p = _ids()
    helpers.STARTED.clear()
    helpers.CANCELLED.clear()
    slow = task(f"{p}slow", method=helpers.SlowExecutor.id)
    async with http_session(mcp_url) as session:
        call = asyncio.create_task(session.call_tool("tasks_run_and_wait", {"tasks": [slow]}))
        assert await asyncio.to_thread(helpers.STARTED.wait, 60)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await session.send_notification(
            types.ClientNotification(
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=session._request_id - 1)
                )
            )
        )
        assert await asyncio.to_thread(helpers.CANCELLED.wait, 60), "the executor kept running"
        for _ in range(500):
            after = data(await session.call_tool("tasks_get", {"task_id": f"{p}slow"}))
            if after["status"] == "cancelled":
                break
            await asyncio.sleep(0.02)
        assert after["status"] == "cancelled"


async def test_isolation_between_users(mcp_url: str) -> None:
    p = _ids()
    async with http_session(mcp_url, f"alice-{p}") as alice:
        data(await alice.call_tool("tasks_create", {"tasks": [task(f"{p}mine")]}))
    async with http_session(mcp_url, f"bob-{p}") as bob:
        assert "no task with id" in error_text(
            await bob.call_tool("tasks_get", {"task_id": f"{p}mine"})
        )
        assert "no task with id" in error_text(
            await bob.call_tool("tasks_tree", {"task_id": f"{p}mine"})
        )
        assert data(await bob.call_tool("tasks_list", {}))["tasks"] == []
        cancel = data(await bob.call_tool("tasks_cancel", {"task_id": f"{p}mine"}))
        assert cancel["outcomes"][0]["status"] == "not_found"
        assert "no task with id" in error_text(
            await bob.call_tool("tasks_delete", {"task_id": f"{p}mine"})
        )
        for uri in (f"apflow://tasks/{p}mine", f"apflow://trees/{p}mine"):
            with pytest.raises(McpError) as err:
                await bob.read_resource(uri)  # type: ignore[arg-type]
            assert "no task with id" in err.value.error.message
            with pytest.raises(McpError):
                await bob.subscribe_resource(uri)  # type: ignore[arg-type]
        listed = await bob.list_resources()
        assert all(p not in str(r.uri) for r in listed.resources)
    async with http_session(mcp_url, f"alice-{p}") as alice:
        mine = data(await alice.call_tool("tasks_get", {"task_id": f"{p}mine"}))
        assert mine["status"] == "pending" and mine["user_id"] == f"alice-{p}"
    async with http_session(mcp_url, "root", "admin") as admin:
        assert data(await admin.call_tool("tasks_get", {"task_id": f"{p}mine"}))["id"]


async def test_requests_without_a_valid_token_are_refused(mcp_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as client:
        missing = await client.post(mcp_url, json=body, headers=headers)
        forged = await client.post(
            mcp_url, json=body, headers={**headers, "Authorization": "Bearer x.y.z"}
        )
    assert missing.status_code == 401 and forged.status_code == 401
    assert "secret" not in missing.text


#: NaN and infinities cannot travel through the SDK's client (it writes them as null);
#: test_non_json_numbers_on_the_wire sends them raw instead.
_NON_JSON = {"nan_input", "infinite_input"}


@pytest.mark.parametrize(
    "case", [c for c in CREATE_CASES if c.name not in _NON_JSON], ids=lambda c: c.name
)
@pytest.mark.parametrize("tool", ["tasks_create", "tasks_run_and_wait"])
async def test_bad_task_input_is_a_protocol_error_and_writes_nothing(
    mcp_url: str, case: BadCreate, tool: str
) -> None:
    p = _ids()
    user = f"bad-{p}"
    async with http_session(mcp_url, user) as session:
        with pytest.raises(McpError) as err:
            await session.call_tool(tool, {"tasks": case.tasks(p)})
        assert err.value.error.code == types.INVALID_PARAMS
        assert case.expect.lower() in err.value.error.message.lower()
        listed = data(await session.call_tool("tasks_list", {"root_only": False}))
    assert listed["tasks"] == []


@pytest.mark.parametrize(
    ("tool", "arguments", "expect"),
    [
        ("tasks_get", {}, "task_id: Field required"),
        ("tasks_get", {"task_id": 5}, "valid string"),
        ("tasks_get", {"task_id": "x", "extra": 1}, "unknown parameter"),
        ("tasks_list", {"limit": 0}, "greater than or equal to 1"),
        ("tasks_cancel", {}, "give task_id or task_ids"),
        ("tasks_run_and_wait", {"task_id": "x", "tasks": []}, "not both"),
        ("tasks_create", {"tasks": "x"}, "valid list"),
        ("executors_list", {"x": 1}, "takes no arguments"),
        ("no_such_tool", {}, "unknown tool"),
    ],
)
async def test_bad_arguments_are_protocol_errors(
    mcp_url: str, tool: str, arguments: dict[str, Any], expect: str
) -> None:
    async with http_session(mcp_url) as session:
        with pytest.raises(McpError) as err:
            await session.call_tool(tool, arguments)
    assert err.value.error.code == types.INVALID_PARAMS
    assert expect in err.value.error.message


async def test_executors_list_has_input_schemas(mcp_url: str) -> None:
    async with http_session(mcp_url) as session:
        found = data(await session.call_tool("executors_list", {}))["executors"]
    by_id = {e["id"]: e for e in found}
    assert by_id["aggregate_results_executor"]["input_schema"] == {"type": "object"}
    assert by_id["mcp_executor"]["dangerous"] in (True, False)
    assert "properties" in by_id["mcp_executor"]["input_schema"]


async def test_delete_removes_the_tree(mcp_url: str) -> None:
    p = _ids()
    async with http_session(mcp_url) as session:
        data(await session.call_tool("tasks_create", {"tasks": [task(f"{p}gone")]}))
        deleted = data(await session.call_tool("tasks_delete", {"task_id": f"{p}gone"}))
        assert deleted["deleted_count"] == 1
        assert "no task with id" in error_text(
            await session.call_tool("tasks_get", {"task_id": f"{p}gone"})
        )


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_non_json_numbers_on_the_wire_are_refused_and_write_nothing(
    mcp_url: str, literal: str
) -> None:
    p = _ids()
    user = f"raw-{p}"
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {helpers.token(user)}",
    }
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": types.LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        first = await client.post(mcp_url, json=init)
        session_id = first.headers["mcp-session-id"]
        client.headers["mcp-session-id"] = session_id
        await client.post(mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "tasks_create",
                "arguments": {"tasks": [task(f"{p}one", inputs={"x": "__LITERAL__"})]},
            },
        }
        body = json.dumps(call).replace('"__LITERAL__"', literal)
        assert literal in body
        answer = await client.post(mcp_url, content=body)
        assert '"error"' in answer.text, answer.text
        assert answer.status_code == 400
        assert f"{literal} is not a JSON number" in answer.text
    async with http_session(mcp_url, user) as session:
        listed = data(await session.call_tool("tasks_list", {"root_only": False}))
    assert listed["tasks"] == []
