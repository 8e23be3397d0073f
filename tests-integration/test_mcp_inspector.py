"""The official MCP Inspector CLI (npm ``@modelcontextprotocol/inspector``) drives our MCP server
over stdio: it lists the tools, runs a tree, and gets an error for an unknown task.

npm installs the Inspector once into pytest's cache directory (Node and npm must be on PATH).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"


@pytest.fixture(scope="module")
def inspector(pytestconfig: pytest.Config) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed for the MCP Inspector test: install Node.js (npm included)")
    assert pytestconfig.cache is not None
    home = Path(pytestconfig.cache.mkdir("mcp-inspector"))
    binary = home / "node_modules" / ".bin" / "mcp-inspector"
    if not binary.exists():
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(home), INSPECTOR],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return binary


def _inspect(binary: Path, db: Path, *args: str) -> Any:
    command = [
        str(binary),
        "--cli",
        sys.executable,
        "-m",
        "aipartnerupflow.mcp_server",
        "--database-url",
        f"duckdb:///{db}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_inspector_cli_drives_the_server(inspector: Path, tmp_path: Path) -> None:
    db = tmp_path / "inspector.duckdb"
    tools = _inspect(inspector, db, "--method", "tools/list")
    assert {t["name"] for t in tools["tools"]} >= {"tasks_run_and_wait", "tasks_cancel"}
    tasks = json.dumps(
        [{"id": "i1", "name": "i1", "schemas": {"method": "aggregate_results_executor"}}]
    )
    created = _inspect(
        inspector,
        db,
        "--method",
        "tools/call",
        "--tool-name",
        "tasks_create",
        "--tool-arg",
        f"tasks={tasks}",
    )
    assert created["structuredContent"]["root_id"] == "i1"
    ran = _inspect(
        inspector,
        db,
        "--method",
        "tools/call",
        "--tool-name",
        "tasks_run_and_wait",
        "--tool-arg",
        "task_id=i1",
    )
    assert ran["structuredContent"]["status"] == "completed"
    missing = _inspect(
        inspector,
        db,
        "--method",
        "tools/call",
        "--tool-name",
        "tasks_get",
        "--tool-arg",
        "task_id=nope",
    )
    assert missing["isError"] is True
    assert "no task with id 'nope'" in missing["content"][0]["text"]
