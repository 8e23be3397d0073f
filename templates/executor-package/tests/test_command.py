"""Behaviour of example_command itself (the contract suite is in test_contract.py)."""

from __future__ import annotations

import sys

import pytest

from aipartnerupflow.core.errors import TaskTreeValidationError
from aipartnerupflow.core.executors import ProcessExitError
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.extensions.example.command import ExampleCommandExecutor
from aipartnerupflow.testing.fixtures import RunTree


async def test_runs_argv_without_a_shell() -> None:
    result = await ExampleCommandExecutor().execute({"command": ["echo", "$HOME;", "*"]})
    assert result["stdout"] == "$HOME; *\n"
    assert result["exit_code"] == 0


async def test_environment_is_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SECRET", "do-not-pass")
    code = "import os; print(sorted(os.environ))"
    result = await ExampleCommandExecutor().execute(
        {"command": [sys.executable, "-c", code], "env": {"EXTRA": "1"}}
    )
    assert "SERVER_SECRET" not in result["stdout"]
    assert "EXTRA" in result["stdout"]


async def test_exit_code_policy() -> None:
    with pytest.raises(ProcessExitError, match="status 3"):
        await ExampleCommandExecutor().execute({"command": ["sh", "-c", "exit 3"]})
    ok = await ExampleCommandExecutor().execute(
        {"command": ["sh", "-c", "exit 3"], "allowed_exit_codes": [0, 3]}
    )
    assert ok["exit_code"] == 3


async def test_refused_until_enabled(run_tree: RunTree, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = [
        {
            "id": "c",
            "name": "c",
            "schemas": {"method": "example_command"},
            "inputs": {"command": ["echo", "hi"]},
        }
    ]
    monkeypatch.delenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS", raising=False)
    reload_settings()
    with pytest.raises(TaskTreeValidationError, match="AIPARTNERUPFLOW_ENABLED_EXECUTORS"):
        await run_tree(tree)
    monkeypatch.setenv("AIPARTNERUPFLOW_ENABLED_EXECUTORS", "example_command")
    reload_settings()
    result = await run_tree(tree)
    assert result.task("c").result["stdout"] == "hi\n"
    reload_settings()
