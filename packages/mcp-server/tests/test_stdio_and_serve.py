"""The server over stdio (``python -m aipartnerupflow.mcp_server``), the bind rule, entry points."""

from __future__ import annotations

import uuid
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from mcp.shared.exceptions import McpError

from aipartnerupflow.core.errors import ConfigurationError
from aipartnerupflow.mcp_server import McpServerSettings
from aipartnerupflow.mcp_server.plugin import check_bind, serve

from .helpers import data, stdio_session, task


async def test_stdio_tree_run_with_progress(tmp_path: Path) -> None:
    p = uuid.uuid4().hex[:6]
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    tasks = [task(f"{p}root"), task(f"{p}a", parent_id=f"{p}root")]
    async with stdio_session(f"duckdb:///{tmp_path / 'stdio.duckdb'}") as session:
        result = data(
            await session.call_tool(
                "tasks_run_and_wait", {"tasks": tasks}, progress_callback=on_progress
            )
        )
        tree = data(await session.call_tool("tasks_tree", {"task_id": f"{p}a"}))
        with pytest.raises(McpError) as err:
            await session.call_tool("tasks_get", {"task_id": ""})
        listed = data(await session.call_tool("tasks_list", {}))
    assert result["status"] == "completed"
    assert tree["root_id"] == f"{p}root" and len(tree["tasks"]) == 2
    assert seen and seen[-1][0] == 2.0 and seen[-1][1] == 2.0
    assert err.value.error.code == types.INVALID_PARAMS
    assert [t["id"] for t in listed["tasks"]] == [f"{p}root"]


async def test_stdio_bad_input_writes_nothing(tmp_path: Path) -> None:
    async with stdio_session(f"duckdb:///{tmp_path / 'bad.duckdb'}") as session:
        with pytest.raises(McpError) as err:
            await session.call_tool("tasks_create", {"tasks": [task("x", priority=99)]})
        assert "less than or equal to 3" in err.value.error.message
        assert data(await session.call_tool("tasks_list", {"root_only": False}))["tasks"] == []


def test_public_bind_without_auth_is_refused() -> None:
    public = McpServerSettings.from_env(host="0.0.0.0")
    with pytest.raises(ConfigurationError, match="AIPARTNERUPFLOW_JWT_SECRET_KEY"):
        check_bind(public, auth_enabled=False)
    check_bind(public, auth_enabled=True)
    check_bind(McpServerSettings.from_env(host="0.0.0.0", insecure=True), auth_enabled=False)
    check_bind(McpServerSettings.from_env(), auth_enabled=False)
    with pytest.raises(ConfigurationError, match=r"refusing to serve MCP on 0\.0\.0\.0"):
        serve(host="0.0.0.0", port=1)


def test_unknown_options_and_transport_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown MCP server option"):
        serve(colour="red")
    with pytest.raises(ConfigurationError, match="transport must be"):
        serve(transport="carrier-pigeon")


def test_entry_points_and_settings() -> None:
    servers = {e.name: e.value for e in entry_points(group="aipartnerupflow.servers")}
    assert servers["mcp"] == "aipartnerupflow.mcp_server.plugin:serve"
    settings = {e.name: e.value for e in entry_points(group="aipartnerupflow.settings")}
    assert settings["mcp-server"].endswith(":McpServerSettings")
    assert McpServerSettings.env_name("port") == "AIPARTNERUPFLOW_MCP_SERVER_PORT"
    assert McpServerSettings.from_env({"AIPARTNERUPFLOW_MCP_SERVER_PORT": "9001"}).port == 9001


@pytest.mark.parametrize("literal", ["NaN", "-Infinity"])
def test_stdio_non_json_numbers_are_parse_errors_and_write_nothing(
    tmp_path: Path, literal: str
) -> None:
    """Raw lines (the SDK's client cannot send NaN): the answer is an error for that id."""
    import json
    import subprocess
    import sys

    db = tmp_path / "nan.duckdb"
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
    bad = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "tasks_create",
            "arguments": {"tasks": [task("n1", inputs={"x": "__LITERAL__"})]},
        },
    }
    listing = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "tasks_list", "arguments": {"root_only": False}},
    }
    lines = [
        json.dumps(init),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps(bad).replace('"__LITERAL__"', literal),
        json.dumps(listing),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "aipartnerupflow.mcp_server", "--database-url", f"duckdb:///{db}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    answers: dict[int, dict[str, Any]] = {}
    try:
        for line in lines:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            wanted = json.loads(line.replace(literal, "null")).get("id")
            while wanted is not None and wanted not in answers:
                message = json.loads(proc.stdout.readline())
                if "id" in message:
                    answers[message["id"]] = message
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        proc.stdout.close()
    assert answers[2]["error"]["code"] == types.PARSE_ERROR
    assert f"{literal} is not a JSON number" in answers[2]["error"]["message"]
    assert answers[3]["result"]["structuredContent"]["tasks"] == []
