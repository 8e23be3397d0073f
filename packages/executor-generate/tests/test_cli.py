"""``apflow generate task-tree`` (the CLI plugin, loaded through the aipartnerupflow.cli entry
point) prints a validated tree; ``--run`` runs it."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from aipartnerupflow.cli.main import app
from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer

from .conftest import API_KEY, INVALID_TREE, MODEL, VALID_TREE


def _invoke(chat_server: FakeChatServer, *args: str) -> Any:
    env = {"AIPARTNERUPFLOW_LLM_API_KEY": API_KEY}
    return CliRunner().invoke(
        app,
        ["generate", "task-tree", *args, "--model", MODEL, "--api-base", chat_server.base_url],
        env=env,
    )


def test_prints_the_tree(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.json(INVALID_TREE), ChatReply.json(VALID_TREE))
    result = _invoke(chat_server, "Shout hello and collect it")
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.stdout)
    assert [t["name"] for t in tasks] == ["Collect", "Shout hello"]
    assert len(chat_server.requests) == 2


def test_run_runs_it(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.json(VALID_TREE))
    result = _invoke(chat_server, "Shout hello", "--run")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["run"]["status"] == "completed"
    shouted = next(t for t in out["run"]["tasks"] if t["name"] == "Shout hello")
    assert shouted["result"] == {"shouted": "HELLO"}


def test_failure_is_one_clear_line(chat_server: FakeChatServer) -> None:
    chat_server.script(*[ChatReply.json(INVALID_TREE)] * 2)
    result = _invoke(chat_server, "x", "--max-rounds", "2")
    assert result.exit_code == 1
    assert "no valid task tree in 2 round(s)" in result.output
    assert "Traceback" not in result.output


def test_listed_in_help(chat_server: FakeChatServer) -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert "generate" in result.stdout


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "import aipartnerupflow.extensions.generate.cli\n"
        "heavy = [m for m in ('litellm', 'pydantic', 'aipartnerupflow.extensions.llm') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""
