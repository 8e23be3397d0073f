"""The shared bad-input corpus through the CLI (tasks create, tasks update): exit code 2, the
same reason as the core service gives, and nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aipartnerupflow.testing.bad_inputs import (
    CREATE_CASES,
    UPDATE_CASES,
    BadCreate,
    BadUpdate,
    base_tree,
)

Cli = Callable[..., Any]


def _everything(cli: Cli) -> Any:
    result = cli("tasks", "list", "--all", "--limit", "1000", "--json")
    assert result.exit_code == 0, result.output
    return sorted(json.loads(result.stdout), key=lambda t: t["id"])


def _refused(result: Any, expect: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ")
    assert expect in result.stderr


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: c.name)
def test_tasks_create_refuses_the_corpus(cli: Cli, case: BadCreate) -> None:
    result = cli("tasks", "create", "--tasks", json.dumps(case.tasks("c-")))
    _refused(result, case.expect)
    assert _everything(cli) == []


@pytest.mark.parametrize("case", UPDATE_CASES, ids=lambda c: c.name)
def test_tasks_update_refuses_the_corpus(cli: Cli, case: BadUpdate) -> None:
    created = cli("tasks", "create", "--tasks", json.dumps(base_tree("u-")))
    assert created.exit_code == 0, created.output
    before = _everything(cli)
    result = cli("tasks", "update", "u-a", "--fields", json.dumps(case.fields("u-")))
    _refused(result, case.expect)
    assert _everything(cli) == before


def test_tasks_update_changes_a_task(cli: Cli) -> None:
    cli("tasks", "create", "--tasks", json.dumps(base_tree("g-")))
    result = cli("tasks", "update", "g-a", "--fields", '{"priority": 0, "name": "first"}', "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["priority"], data["name"]) == (0, "first")
    _refused(cli("tasks", "update", "g-a", "--fields", "[1]"), "must be a JSON object")
    _refused(cli("tasks", "update", "nope", "--fields", "{}"), "no task with id 'nope'")


def test_tasks_watch_says_a_tree_nobody_runs_is_pending(cli: Cli) -> None:
    cli("tasks", "create", "--tasks", json.dumps(base_tree("p-")))
    result = cli("tasks", "watch", "p-a", "--interval", "0.05", "--no-live")
    _refused(result, "is pending and not running")
    assert "apflow tasks execute p-root" in result.stderr


def test_json_nested_beyond_the_parser_is_a_user_error(cli: Cli) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    _refused(cli("tasks", "create", "--tasks", deep), "nested too deeply")
    _refused(cli("tasks", "update", "x", "--fields", deep), "nested too deeply")
