"""Conformance with A2A 1.0, keyed to the A2A TCK requirement ids.

Most checks run against both the flow agent and the conformance (``tck``) agent, over both
bindings (JSON-RPC and HTTP+JSON), with raw HTTP so that the wire format itself is checked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from a2a_helpers import chain, in_process

V1 = {"A2A-Version": "1.0"}
TERMINAL = {
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
}


@pytest.fixture(autouse=True)
def fast_tck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCK_STREAMING_TIMEOUT", "0.2")


def tck_message(message_id: str, text: str = "Hello from TCK", **extra: Any) -> dict[str, Any]:
    return {
        "message": {
            "role": "ROLE_USER",
            "messageId": message_id,
            "parts": [{"text": text}],
            **extra,
        }
    }


def flow_message(prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "message": {
            "role": "ROLE_USER",
            "messageId": f"{prefix}-m",
            "parts": [{"data": {"tasks": chain(prefix)}}],
            **extra,
        }
    }


def sse(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def rpc(server: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = await server.rpc(method, params)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


# --- agent card ------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["flow", "tck"])
async def test_card_declares_interfaces_version_and_capabilities(agent: str) -> None:
    async with in_process(agent=agent) as server:
        card = (await server.http.get("/.well-known/agent-card.json")).json()
    assert {i["protocolBinding"] for i in card["supportedInterfaces"]} == {"JSONRPC", "HTTP+JSON"}
    assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0"}  # VER-CLIENT-002
    assert card["capabilities"]["streaming"]
    assert card["capabilities"]["pushNotifications"]
    assert card["skills"]
    assert card["defaultInputModes"]
    assert card["defaultOutputModes"]


# --- CORE-SEND ---------------------------------------------------------------------------


async def test_core_send_001_send_message_returns_a_task_or_a_message() -> None:
    async with in_process(agent="tck") as server:
        task = await rpc(server, "SendMessage", tck_message("tck-complete-task-001"))
        message = await rpc(server, "SendMessage", tck_message("tck-message-response-001"))
    assert task["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["result"]["task"]["status"]["message"]["parts"][0]["text"] == "Hello from TCK"
    assert message["result"]["message"]["parts"][0]["text"] == "Direct message response"


@pytest.mark.parametrize("agent", ["flow", "tck"])
async def test_core_send_002_messages_to_terminal_tasks_are_unsupported(agent: str) -> None:
    async with in_process(agent=agent) as server:
        first = tck_message("tck-complete-task-002") if agent == "tck" else flow_message("send002")
        task = (await rpc(server, "SendMessage", first))["result"]["task"]
        follow = (
            tck_message("tck-complete-task-002b", taskId=task["id"])
            if agent == "tck"
            else flow_message("send002b", taskId=task["id"])
        )
        answer = await rpc(server, "SendMessage", follow)
    assert answer["error"]["code"] == -32004


@pytest.mark.parametrize("agent", ["flow", "tck"])
async def test_core_send_003_unsupported_media_type(agent: str) -> None:
    params = {
        "message": {
            "role": "ROLE_USER",
            "messageId": "tck-send-003",
            "parts": [{"raw": "dGNr", "mediaType": "application/x-unsupported-tck-type"}],
        }
    }
    async with in_process(agent=agent) as server:
        answer = await rpc(server, "SendMessage", params)
        rest = await server.http.post("/message:send", json=params, headers=V1)
    assert answer["error"]["code"] == -32005
    assert rest.json()["error"]["details"][0]["reason"] == "CONTENT_TYPE_NOT_SUPPORTED"


# --- CORE-STREAM ----------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["flow", "tck"])
@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_core_stream_001_003_stream_starts_with_task_and_ends_terminal(
    agent: str, binding: str
) -> None:
    params = tck_message("tck-stream-003-x") if agent == "tck" else flow_message("st3")
    async with in_process(agent=agent) as server:
        if binding == "JSONRPC":
            response = await server.rpc("SendStreamingMessage", params)
            events = [e["result"] for e in sse(response.text)]
        else:
            response = await server.http.post("/message:stream", json=params, headers=V1)
            events = sse(response.text)  # HTTP_JSON-SSE-001: StreamResponse JSON in data
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "task" in events[0]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    middle = [next(iter(e)) for e in events[1:-1]]
    assert set(middle) <= {"statusUpdate", "artifactUpdate"}
    assert "artifactUpdate" in middle


async def test_core_stream_002_message_only_stream_has_exactly_one_message() -> None:
    async with in_process(agent="tck") as server:
        response = await server.rpc("SendStreamingMessage", tck_message("tck-stream-002-x"))
    events = [e["result"] for e in sse(response.text)]
    assert len(events) == 1
    assert "message" in events[0]


# --- CORE-GET ---------------------------------------------------------------------------


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_core_get_001_002_get_task_and_task_not_found(binding: str) -> None:
    async with in_process() as server:
        task = (await rpc(server, "SendMessage", flow_message("get1")))["result"]["task"]
        if binding == "JSONRPC":
            got = (await rpc(server, "GetTask", {"id": task["id"]}))["result"]
            missing = await rpc(server, "GetTask", {"id": "tck-nonexistent-get-002"})
            assert missing["error"]["code"] == -32001
            assert missing["error"]["data"][0]["reason"] == "TASK_NOT_FOUND"
        else:
            got = (await server.http.get(f"/tasks/{task['id']}", headers=V1)).json()
            missing = await server.http.get("/tasks/tck-nonexistent-get-002", headers=V1)
            assert missing.status_code == 404  # HTTP_JSON-STATUS-001
            error = missing.json()["error"]  # HTTP_JSON-ERR-001/002 (AIP-193 + ErrorInfo)
            assert error["status"] == "NOT_FOUND"
            assert error["details"][0]["domain"] == "a2a-protocol.org"
    assert got["status"]["state"] == "TASK_STATE_COMPLETED"
    assert len(got["artifacts"]) == 3


async def test_core_hist_history_length_limits_history() -> None:
    async with in_process() as server:
        task = (await rpc(server, "SendMessage", flow_message("hist")))["result"]["task"]
        none = (await rpc(server, "GetTask", {"id": task["id"], "historyLength": 0}))["result"]
        full = (await rpc(server, "GetTask", {"id": task["id"]}))["result"]
    assert "history" not in none or none["history"] == []
    assert full["history"][0]["messageId"] == "hist-m"


# --- CORE-LIST ----------------------------------------------------------------------------


async def test_core_list_002_to_005_pagination_order_and_artifacts() -> None:
    async with in_process() as server:
        ids = [
            (await rpc(server, "SendMessage", flow_message(f"l{i}")))["result"]["task"]["id"]
            for i in range(3)
        ]
        page1 = (await rpc(server, "ListTasks", {"pageSize": 2}))["result"]
        page2 = (
            await rpc(server, "ListTasks", {"pageSize": 2, "pageToken": page1["nextPageToken"]})
        )["result"]
        with_artifacts = (await rpc(server, "ListTasks", {"includeArtifacts": True}))["result"]
        rest = await server.http.get(
            "/tasks", params={"pageSize": 2, "contextId": "l1root"}, headers=V1
        )  # HTTP_JSON-QP-001: camelCase query params
    assert [t["id"] for t in page1["tasks"] + page2["tasks"]] == list(reversed(ids))
    stamps = [t["status"]["timestamp"] for t in page1["tasks"] + page2["tasks"]]
    assert stamps == sorted(stamps, reverse=True)  # CORE-LIST-003
    assert page2["nextPageToken"] == ""  # CORE-LIST-004
    assert all("artifacts" not in t for t in page1["tasks"])  # CORE-LIST-005
    assert all(len(t["artifacts"]) == 3 for t in with_artifacts["tasks"])
    assert [t["contextId"] for t in rest.json()["tasks"]] == ["l1root"]


# --- CORE-CANCEL ------------------------------------------------------------------------


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_core_cancel_001_to_003(binding: str) -> None:
    async with in_process(agent="tck") as server:
        waiting = await rpc(server, "SendMessage", tck_message("tck-input-required-c"))
        task_id = waiting["result"]["task"]["id"]
        assert waiting["result"]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        if binding == "JSONRPC":
            cancelled = (await rpc(server, "CancelTask", {"id": task_id}))["result"]
            again = await rpc(server, "CancelTask", {"id": task_id})
            missing = await rpc(server, "CancelTask", {"id": "tck-nonexistent-cancel-003"})
            done = await rpc(server, "SendMessage", tck_message("tck-complete-task-c"))
            not_cancelable = await rpc(server, "CancelTask", {"id": done["result"]["task"]["id"]})
            assert missing["error"]["code"] == -32001
            assert not_cancelable["error"]["code"] == -32002
        else:
            cancelled = (await server.http.post(f"/tasks/{task_id}:cancel", headers=V1)).json()
            again = (await server.http.post(f"/tasks/{task_id}:cancel", headers=V1)).json()
            missing = await server.http.post("/tasks/nope:cancel", headers=V1)
            assert missing.status_code == 404
    assert cancelled["status"]["state"] == "TASK_STATE_CANCELED"
    assert again is not None


# --- CORE-EXECUTION-MODE ------------------------------------------------------------------


async def test_core_execution_mode_001_002_blocking_and_return_immediately() -> None:
    async with in_process(agent="tck") as server:
        blocking = await rpc(server, "SendMessage", tck_message("tck-delayed-complete-1"))
        immediate = await rpc(
            server,
            "SendMessage",
            {**tck_message("tck-delayed-complete-2"), "configuration": {"returnImmediately": True}},
        )
    assert blocking["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert immediate["result"]["task"]["status"]["state"] not in TERMINAL


async def test_core_execution_mode_flow_agent_honours_return_immediately() -> None:
    async with in_process() as server:
        immediate = await rpc(
            server,
            "SendMessage",
            {**flow_message("ri"), "configuration": {"returnImmediately": True}},
        )
        task = immediate["result"]["task"]
        assert task["contextId"] == "riroot"


# --- artifacts of the TCK scenarios ---------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "check"),
    [
        ("tck-artifact-text-1", lambda p: p["text"] == "Generated text content"),
        ("tck-artifact-file-1", lambda p: p["filename"] == "output.txt"),
        ("tck-artifact-file-url-1", lambda p: p["url"] == "https://example.com/output.txt"),
        ("tck-artifact-data-1", lambda p: p["data"] == {"key": "value", "count": 42}),
    ],
)
async def test_tck_artifact_scenarios(message_id: str, check: Any) -> None:
    async with in_process(agent="tck") as server:
        task = (await rpc(server, "SendMessage", tck_message(message_id)))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert check(task["artifacts"][0]["parts"][0])


async def test_tck_reject_scenario() -> None:
    async with in_process(agent="tck") as server:
        task = await rpc(server, "SendMessage", tck_message("tck-reject-task-1"))
    assert task["result"]["task"]["status"]["state"] == "TASK_STATE_REJECTED"


# --- versioning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "code"), [("9.9", -32009), (None, -32009), ("1.0", None), ("1.0.7", None)]
)
async def test_ver_server_001_to_003(version: str | None, code: int | None) -> None:
    async with in_process(agent="tck") as server:
        response = await server.rpc(
            "SendMessage", tck_message("tck-complete-task-v"), version=version
        )
    body = response.json()
    if code is None:
        assert body["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    else:
        assert body["error"]["code"] == code


# --- JSON-RPC binding (spec section 9) ---------------------------------------------------------


async def test_jsonrpc_envelope_errors() -> None:
    async with in_process() as server:
        unknown = await server.rpc("NoSuchMethod", {})
        bad_json = await server.http.post("/", content=b"{", headers=V1)
        no_method = await server.http.post("/", json={"jsonrpc": "2.0", "id": 3}, headers=V1)
        bad_params = await server.rpc("GetTask", {"id": {"not": "a string"}})
    assert unknown.json()["error"]["code"] == -32601
    assert bad_json.json()["error"]["code"] == -32700
    assert no_method.json()["error"]["code"] == -32600
    assert bad_params.json()["error"]["code"] == -32602
    assert unknown.json()["id"] == 1
