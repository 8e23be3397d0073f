"""mcp_executor against a real FastMCP server (tests/mcp_server.py) over streamable HTTP
(uvicorn on loopback) and stdio (``sys.executable mcp_server.py``, allow-listed in conftest)."""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from aipartnerupflow.core.errors import (
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
    TaskTimeoutError,
)
from aipartnerupflow.core.events import TaskEvent
from aipartnerupflow.core.executors.resources import aclose_loop_resources, loop_resources
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.mcp import McpExecutor
from aipartnerupflow.extensions.mcp.errors import McpProtocolError, McpToolError, StdioRefusedError

from . import mcp_server
from .conftest import TOKEN


@pytest.fixture(autouse=True)
async def _close_sessions() -> AsyncIterator[None]:
    yield
    await aclose_loop_resources()


async def call(inputs: dict[str, Any]) -> dict[str, Any]:
    return await McpExecutor().execute(inputs)


@pytest.fixture(params=["http", "stdio"])
def server(
    request: pytest.FixtureRequest, mcp_url: str, stdio_command: list[str]
) -> dict[str, Any]:
    if request.param == "http":
        return {"transport": "http", "url": mcp_url}
    return {"transport": "stdio", "command": stdio_command}


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()}


async def _no_children(before: set[int]) -> set[int]:
    for _ in range(200):
        left = {
            pid
            for pid in _children() - before
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        }
        if not left:
            return left
        await asyncio.sleep(0.05)
    return left


@pytest.fixture
async def manager() -> AsyncIterator[TaskManager]:
    registry = ExecutorRegistry()
    registry.register(McpExecutor, override=True)
    engine = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    try:
        yield engine
    finally:
        await engine.close()


def _task(inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "t",
        "name": "mcp",
        "schemas": {"method": "mcp_executor"},
        "inputs": inputs,
        **extra,
    }


# -- operations -------------------------------------------------------------------------------


async def test_call_tool_text_and_structured_content(server: dict[str, Any]) -> None:
    result = await call(
        {**server, "operation": "call_tool", "tool_name": "add", "arguments": {"a": 2, "b": 3}}
    )
    assert result["success"] is True
    assert result["operation"] == "call_tool"
    assert result["transport"] == server["transport"]
    assert result["server"]["name"] == "apflow-test"
    assert result["result"]["text"] == "5"
    assert result["result"]["content"] == [{"type": "text", "text": "5"}]
    assert result["result"]["structuredContent"] == {"result": 5}
    structured = await call({**server, "tool_name": "structured", "arguments": {"city": "Oslo"}})
    assert structured["operation"] == "call_tool"  # implied by tool_name
    assert structured["result"]["structuredContent"] == {"city": "Oslo", "temperature": 21.5}


async def test_original_input_names(mcp_url: str) -> None:
    # The original project's inputs: transport, operation, url, tool_name, arguments, timeout.
    result = await call(
        {
            "transport": "http",
            "operation": "call_tool",
            "url": mcp_url,
            "headers": {"X-Client": "apflow"},
            "tool_name": "echo",
            "arguments": {"text": "hi"},
            "timeout": 30,
        }
    )
    assert result["result"]["text"] == "hi"
    tools = await call({"transport": "http", "operation": "list_tools", "url": mcp_url})
    names = {t["name"] for t in tools["result"]["tools"]}
    assert {"add", "echo", "progress", "fail", "hang"} <= names
    add = next(t for t in tools["result"]["tools"] if t["name"] == "add")
    assert add["inputSchema"]["required"] == ["a", "b"]
    resources = await call({"transport": "http", "operation": "list_resources", "url": mcp_url})
    assert {r["uri"] for r in resources["result"]["resources"]} == {"memo://readme", "memo://logo"}


async def test_arguments_checked_against_the_tool_schema(server: dict[str, Any]) -> None:
    with pytest.raises(InputValidationError, match=r"input schema of tool 'add'.*arguments\.a"):
        await call({**server, "tool_name": "add", "arguments": {"a": "two", "b": 3}})
    with pytest.raises(InputValidationError, match=r"arguments\.text.*required"):
        await call({**server, "tool_name": "echo", "arguments": {}})
    with pytest.raises(InputValidationError, match=r"no tool 'nope' \(its tools: add, big"):
        await call({**server, "tool_name": "nope"})


async def test_invalid_arguments_never_reach_the_server(mcp_url: str) -> None:
    await call({"url": mcp_url, "tool_name": "add", "arguments": {"a": 1, "b": 1}})
    served = mcp_server.CALLS["add"]
    with pytest.raises(InputValidationError):
        await call({"url": mcp_url, "tool_name": "add", "arguments": {"a": 1}})
    assert mcp_server.CALLS["add"] == served


async def test_tool_error_fails_with_its_text(server: dict[str, Any]) -> None:
    with pytest.raises(McpToolError, match=r"tool .fail. failed: .*boom here") as info:
        await call({**server, "tool_name": "fail", "arguments": {"message": "boom here"}})
    assert "boom here" in info.value.result["text"]


async def test_resources(server: dict[str, Any]) -> None:
    text = await call({**server, "operation": "read_resource", "resource_uri": "memo://readme"})
    assert text["result"]["contents"] == [
        {"uri": "memo://readme", "mimeType": "text/plain", "text": "read me"}
    ]
    blob = await call({**server, "resource_uri": "memo://logo"})
    [content] = blob["result"]["contents"]
    assert content["mimeType"] == "image/png"
    assert base64.b64decode(content["blob"]) == b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    with pytest.raises(McpProtocolError, match="Unknown resource: memo://missing"):
        await call({**server, "resource_uri": "memo://missing"})


async def test_prompts(server: dict[str, Any]) -> None:
    result = await call({**server, "prompt_name": "greet", "arguments": {"name": "Ada"}})
    assert result["operation"] == "get_prompt"
    [message] = result["result"]["messages"]
    assert message["role"] == "user"
    assert message["content"] == {"type": "text", "text": "Say hello to Ada."}
    listed = await call({**server, "operation": "list_prompts"})
    assert [p["name"] for p in listed["result"]["prompts"]] == ["greet"]
    with pytest.raises(InputValidationError, match=r"arguments\.name.*strings"):
        await call({**server, "prompt_name": "greet", "arguments": {"name": 3}})


async def test_binary_and_text_content_capped(server: dict[str, Any]) -> None:
    image = await call(
        {**server, "tool_name": "image", "arguments": {"size": 5000}, "max_output_bytes": 1000}
    )
    [item] = image["result"]["content"]
    assert item["type"] == "image" and item["mimeType"] == "image/png"
    assert base64.b64decode(item["data"]) == bytes(i % 256 for i in range(1000))
    assert item["truncated"] is True and item["size"] == 5000
    assert image["truncated"] is True
    text = await call(
        {**server, "tool_name": "big", "arguments": {"size": 100_000}, "max_output_bytes": 500}
    )
    assert len(text["result"]["text"]) == 500 and text["truncated"] is True
    whole = await call({**server, "tool_name": "image", "arguments": {"size": 10}})
    assert (
        "truncated" not in whole
        and len(base64.b64decode(whole["result"]["content"][0]["data"])) == 10
    )


async def test_embedded_resource(server: dict[str, Any]) -> None:
    result = await call({**server, "tool_name": "embedded"})
    assert result["result"]["content"] == [
        {
            "type": "resource",
            "resource": {"uri": "memo://inline", "mimeType": "text/plain", "text": "inline"},
        }
    ]


# -- progress, sessions, cancellation ---------------------------------------------------------


async def test_progress_becomes_task_progress(manager: TaskManager, server: dict[str, Any]) -> None:
    events: list[TaskEvent] = []
    manager.add_listener(events.append)
    outcome = await manager.run_tasks(
        [_task({**server, "tool_name": "progress", "arguments": {"steps": 4}})]
    )
    assert outcome.task("t").status == "completed"
    progress = [(e.progress, e.message) for e in events if e.kind == "task_progress"]
    assert progress == [(i / 4, f"step {i} of 4") for i in range(1, 5)]


async def test_progress_without_total(manager: TaskManager, mcp_url: str) -> None:
    events: list[TaskEvent] = []
    manager.add_listener(events.append)
    outcome = await manager.run_tasks(
        [_task({"url": mcp_url, "tool_name": "steps", "arguments": {"count": 3}})]
    )
    assert outcome.task("t").status == "completed"
    progress = [(e.progress, e.message) for e in events if e.kind == "task_progress"]
    assert progress == [(0.0, "1"), (0.0, "2"), (0.0, "3")]


async def test_sessions_reused_per_server(stdio_command: list[str], mcp_url: str) -> None:
    before = _children()
    first = await call({"command": stdio_command, "tool_name": "pid"})
    second = await call({"command": stdio_command, "tool_name": "pid"})
    assert first["result"]["text"] == second["result"]["text"]  # one server process
    await call({"url": mcp_url, "tool_name": "pid"})
    await call({"url": mcp_url, "tool_name": "pid"})
    keys = [k for k in loop_resources() if isinstance(k, tuple) and k[0] == "mcp_executor"]
    assert len(keys) == 2
    pid = int(first["result"]["text"])
    assert psutil.pid_exists(pid)
    await aclose_loop_resources()
    assert loop_resources() == {}
    assert await _no_children(before) == set()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_dead_stdio_server_is_restarted(stdio_command: list[str]) -> None:
    first = int((await call({"command": stdio_command, "tool_name": "pid"}))["result"]["text"])
    [conn] = [
        v for k, v in loop_resources().items() if isinstance(k, tuple) and k[0] == "mcp_executor"
    ]
    psutil.Process(first).kill()
    for _ in range(400):  # the session notices the server's end of file
        if not conn.alive:
            break
        await asyncio.sleep(0.025)
    assert not conn.alive
    second = int((await call({"command": stdio_command, "tool_name": "pid"}))["result"]["text"])
    assert second != first


async def test_cancel_over_stdio_notifies_the_server_and_stops_it(
    stdio_command: list[str], tmp_path: Path
) -> None:
    marker = str(tmp_path / "hang")
    before = _children()
    executor = McpExecutor()
    job = asyncio.create_task(
        executor.execute(
            {"command": stdio_command, "tool_name": "hang", "arguments": {"marker": marker}}
        )
    )
    for _ in range(400):
        if os.path.exists(marker + ".started"):
            break
        await asyncio.sleep(0.025)
    assert os.path.exists(marker + ".started")
    await executor.cancel()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert Path(marker).read_text() == "cancelled"  # notifications/cancelled reached it
    assert await _no_children(before) == set()  # and the server process is gone


async def test_cancel_over_http_notifies_the_server(mcp_url: str) -> None:
    executor = McpExecutor()
    job = asyncio.create_task(executor.execute({"url": mcp_url, "tool_name": "hang"}))
    assert await asyncio.to_thread(mcp_server.HANG_STARTED.wait, 10)
    await executor.cancel()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert await asyncio.to_thread(mcp_server.HANG_CANCELLED.wait, 10)
    # the shared HTTP session still works
    assert (await call({"url": mcp_url, "tool_name": "echo", "arguments": {"text": "ok"}}))[
        "result"
    ]["text"] == "ok"


async def test_timeout_fails_and_cancels(mcp_url: str) -> None:
    with pytest.raises(TaskTimeoutError, match=r"within 0\.5 s"):
        await call({"url": mcp_url, "tool_name": "hang", "timeout": 0.5})
    assert await asyncio.to_thread(mcp_server.HANG_CANCELLED.wait, 10)


# -- policy, gating, secrets ------------------------------------------------------------------


async def test_loopback_denied_by_default(mcp_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_MCP_ALLOW_PRIVATE")
    reload_settings()
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_MCP_ALLOW_PRIVATE"):
        await call({"url": mcp_url, "tool_name": "echo", "arguments": {"text": "x"}})
    # a name that resolves to loopback is refused at connect time too (checked addresses)
    with pytest.raises(OutboundPolicyError, match="loopback"):
        await call({"url": mcp_url.replace("127.0.0.1", "localhost"), "tool_name": "pid"})


async def test_stdio_off_by_default(
    stdio_command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _children()
    monkeypatch.delenv("AIPARTNERUPFLOW_MCP_ALLOW_STDIO")
    reload_settings()
    with pytest.raises(StdioRefusedError, match="AIPARTNERUPFLOW_MCP_ALLOW_STDIO=true"):
        await call({"command": stdio_command, "tool_name": "pid"})
    assert _children() == before


async def test_stdio_program_allow_list(stdio_command: list[str], tmp_path: Path) -> None:
    with pytest.raises(StdioRefusedError, match="AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES"):
        await call({"command": ["/bin/sh", "-c", "echo"], "tool_name": "pid"})
    link = tmp_path / "sh"
    link.symlink_to("/bin/sh")
    with pytest.raises(StdioRefusedError, match="resolved to"):
        await call({"command": [str(link)], "tool_name": "pid"})
    with pytest.raises(StdioRefusedError, match="relative path"):
        await call({"command": ["./python"], "tool_name": "pid"})
    with pytest.raises(StdioRefusedError, match="LD_PRELOAD may never be set"):
        await call({"command": stdio_command, "env": {"LD_PRELOAD": "/x.so"}, "tool_name": "pid"})
    with pytest.raises(StdioRefusedError, match="AIPARTNERUPFLOW_MCP_ENV_ALLOW"):
        await call({"command": stdio_command, "env": {"FOO": "1"}, "tool_name": "pid"})
    with pytest.raises(StdioRefusedError, match="AIPARTNERUPFLOW_MCP_ALLOWED_DIRS"):
        await call({"command": stdio_command, "cwd": str(tmp_path), "tool_name": "pid"})


async def test_stdio_server_that_exits_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RetryableError, match="stderr ends with: gone"):
        await call(
            {
                "command": [
                    sys.executable,
                    "-c",
                    "import sys; sys.stderr.write('gone'); sys.exit(3)",
                ],
                "tool_name": "pid",
                "timeout": 60,
            }
        )


async def test_wrong_path_is_permanent(http_server: Any, manager: TaskManager) -> None:
    with pytest.raises(PermanentError, match="HTTP 404"):
        await call({"url": f"{http_server.url}/nope?token=abcdef123", "tool_name": "pid"})
    outcome = await manager.run_tasks(
        [_task({"url": f"{http_server.url}/nope?api_key=qwerty789", "tool_name": "pid"})]
    )
    error = outcome.task("t").error or ""
    assert "HTTP 404" in error and "qwerty789" not in error


async def test_unreachable_server_is_retryable(unused_tcp_port: int) -> None:
    with pytest.raises(RetryableError, match=r"Connection refused|ConnectError"):
        await call({"url": f"http://127.0.0.1:{unused_tcp_port}/mcp", "tool_name": "pid"})


async def test_header_secrets_never_leave(
    manager: TaskManager, mcp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    outcome = await manager.run_tasks(
        [
            _task(
                {
                    "url": mcp_url,
                    "headers": headers,
                    "tool_name": "header",
                    "arguments": {"name": "authorization"},
                }
            )
        ]
    )
    task = outcome.task("t")
    assert task.status == "completed"
    assert task.result["result"]["text"] == "***"  # the server saw it; the result masks it
    failed = await manager.run_tasks(
        [
            {
                **_task(
                    {
                        "url": mcp_url,
                        "headers": headers,
                        "tool_name": "fail",
                        "arguments": {"message": f"token {TOKEN}"},
                    }
                ),
                "id": "t2",
            }
        ]
    )
    assert failed.task("t2").status == "failed"
    assert "token ***" in (failed.task("t2").error or "")
    stored = [await manager.task_repository.get_task_by_id(i) for i in ("t", "t2")]
    assert all(TOKEN not in f"{s.result!r} {s.error!r}" for s in stored if s is not None)
    # The test server (another thread, outside any task) logs what it sends; ours must not.
    server_side = ("sse_starlette", "mcp.server", "uvicorn")
    leaks = {
        r.name
        for r in caplog.records
        if TOKEN in r.getMessage() and not r.name.startswith(server_side)
    }
    assert not leaks
    assert any(r.name.startswith("mcp.client") for r in caplog.records)  # client logs seen


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"tool_name": "add", "timeout": math.nan}, "timeout"),
        ({"tool_name": "add", "arguments": {"a": math.inf, "b": 1}}, "NaN or Infinity"),
        ({"operation": "call_tool"}, "tool_name"),
        ({"tool_name": "add", "headers": {"X": "a\r\nb"}}, "headers.X"),
        ({"url": "http://x\x00y/mcp", "tool_name": "add"}, "NUL"),
    ],
)
async def test_bad_inputs(mcp_url: str, inputs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError, match=field):
        await call({"url": mcp_url, **inputs})


async def test_deeply_nested_arguments(mcp_url: str) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InputValidationError, match="nested more than 64"):
        await call({"url": mcp_url, "tool_name": "echo", "arguments": deep})


async def test_neither_url_nor_command() -> None:
    with pytest.raises(InputValidationError, match=r"'url'.*'command'"):
        await call({"tool_name": "add"})


async def test_concurrent_calls_share_one_session(server: dict[str, Any]) -> None:
    results = await asyncio.gather(
        *(call({**server, "tool_name": "add", "arguments": {"a": i, "b": 100}}) for i in range(20))
    )
    assert [r["result"]["text"] for r in results] == [str(i + 100) for i in range(20)]
    keys = [k for k in loop_resources() if isinstance(k, tuple) and k[0] == "mcp_executor"]
    assert len(keys) == 1


async def test_stdio_timeout_stops_the_server(stdio_command: list[str], tmp_path: Path) -> None:
    marker = str(tmp_path / "hang")
    before = _children()
    with pytest.raises(TaskTimeoutError):
        await call(
            {
                "command": stdio_command,
                "tool_name": "hang",
                "arguments": {"marker": marker},
                "timeout": 3,
            }
        )
    assert await _no_children(before) == set()
    assert loop_resources() == {}


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import entry_points

    from aipartnerupflow.extensions.mcp import McpSettings

    [entry] = [e for e in entry_points(group="aipartnerupflow.settings") if e.name == "mcp"]
    assert entry.load() is McpSettings
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_ALLOWED_HOSTS", "mcp.example.com,10.0.0.0/8")
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_MAX_OUTPUT_BYTES", "2048")
    reload_settings()
    settings = McpSettings.get()
    assert settings.allowed_hosts == ("mcp.example.com", "10.0.0.0/8")
    assert settings.max_output_bytes == 2048
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_MCP_ALLOWED_HOSTS"):
        settings.policy().check_url("https://other.example.com/mcp")
    monkeypatch.setenv("AIPARTNERUPFLOW_MCP_SEARCH_PATH", "relative/bin")
    reload_settings()
    with pytest.raises(Exception, match="absolute"):
        McpSettings.get()
