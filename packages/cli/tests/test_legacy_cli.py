"""aipartnerupflow 0.9 command lines: translated, or refused with the new spelling; and
``apflow db import-legacy`` on a database written with the 0.9 schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import duckdb
import pytest

from aipartnerupflow.cli._legacy import LegacyUsageError, translate
from aipartnerupflow.testing.legacy import legacy_row, write_legacy_database

AGG = {"method": "aggregate_results_executor"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["tasks", "create", "--file", "t.json"], ["tasks", "create", "--tasks-file", "t.json"]),
        (["tasks", "create", "--file=t.json"], ["tasks", "create", "--tasks-file", "t.json"]),
        (["tasks", "create", "--stdin"], ["tasks", "create", "--tasks-file", "-"]),
        (["tasks", "count", "--format", "json"], ["tasks", "count", "--json"]),
        (["tasks", "count", "-f", "table", "-r"], ["tasks", "count", "--roots-only"]),
        (["tasks", "count", "-r", "root-1"], ["tasks", "count", "-r", "root-1"]),  # ours
        (["tasks", "list", "--all-tasks", "-o", "5"], ["tasks", "list", "--all", "--offset", "5"]),
        (["tasks", "list", "--root-only", "--format", "json"], ["tasks", "list", "--json"]),
        (["tasks", "all"], ["tasks", "list", "--all"]),
        (
            ["tasks", "update", "t1", "--name", "n", "--priority", "0", "--inputs", '{"a": 1}'],
            [
                *("tasks", "update", "t1", "--fields"),
                '{"name": "n", "priority": 0, "inputs": {"a": 1}}',
            ],
        ),
        (["tasks", "children", "--parent-id", "p"], ["tasks", "children", "p"]),
        (["tasks", "watch", "-t", "r"], ["tasks", "watch", "r"]),
        (["tasks", "cancel", "a", "--force"], ["tasks", "cancel", "a"]),
        (["tasks", "delete", "a", "-f"], ["tasks", "delete", "a", "--force"]),
        (
            ["serve", "start", "-h", "127.0.0.1", "--port", "9"],
            ["serve", "--host", "127.0.0.1", "--port", "9"],
        ),
        (["serve", "--protocol", "mcp"], ["serve", "mcp"]),
        (["daemon", "start", "--background", "-P", "a2a"], ["daemon", "start", "a2a"]),
        (["run", "flow", "-f", "t.json", "--watch"], ["run", "flow", "-f", "t.json"]),
        (
            ["--database-url", "duckdb:///x", "tasks", "count", "--format", "json"],
            ["--database-url", "duckdb:///x", "tasks", "count", "--json"],
        ),
        (
            ["generate", "task-tree", "Fetch data", "-m", "openai/gpt-4o", "--pretty"],
            ["generate", "task-tree", "Fetch data", "--model", "openai/gpt-4o"],
        ),
        (["tasks", "get", "--", "--file"], ["tasks", "get", "--", "--file"]),
        (["tasks", "list", "-h"], ["tasks", "list", "-h"]),
    ],
)
def test_09_spellings_are_translated(old: list[str], new: list[str]) -> None:
    assert translate(old)[0] == new


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["run", "flow", "-t", "[]", "--background"], "Use --queue to hand the tree"),
        (["run", "flow", "-t", "[]", "--use-demo"], "demo mode (canned results) is not kept"),
        (["tasks", "watch", "--all"], "follow one tree with `apflow tasks watch ROOT_ID`"),
        (["tasks", "copy", "r", "--copy-mode", "full"], "--rerun failed"),
        (["serve", "--workers", "4"], "scale out with `apflow worker` processes"),
        (["daemon", "start", "--foreground"], "`apflow serve`"),
        (["tasks", "update", "t", "--inputs", "{bad"], "--inputs must be JSON, got '{bad'"),
        (["tasks", "update", "t", "--result", "{}"], "written by its run: run it again with"),
        (["tasks", "update", "t", "--progress", "1"], "or stop it with `--status cancelled`"),
        (["tasks", "update", "t", "--priority", "high"], "--priority must be a number"),
        (["tasks", "count", "--format", "xml"], "--format takes table or json, not 'xml'"),
        (["generate", "task-tree", "x", "--save"], "apflow tasks create --tasks-file FILE"),
        (["generate", "task-tree", "x", "-p", "anthropic"], "--model anthropic/claude-"),
    ],
)
def test_09_spellings_whose_behaviour_is_gone_name_the_new_one(args: list[str], hint: str) -> None:
    with pytest.raises(LegacyUsageError) as info:
        translate(args)
    assert hint in str(info.value)


def test_hints_exit_2_with_one_line(cli: Callable[..., Any]) -> None:
    out = cli("run", "flow", "--tasks", "[]", "--background")
    assert out.exit_code == 2
    assert "Error: --background is an aipartnerupflow 0.9 option:" in out.output


def test_09_command_lines_work_end_to_end(cli: Callable[..., Any], tmp_path: Any) -> None:
    spec = tmp_path / "tree.json"
    spec.write_text(
        json.dumps(
            [
                {"id": "r", "name": "Root", "schemas": AGG, "status": "pending", "progress": 0},
                {"id": "c", "name": "Child", "parent_id": "r", "schemas": AGG},
            ]
        )
    )
    created = cli("tasks", "create", "--file", str(spec))
    assert created.exit_code == 0, created.output
    updated = cli("tasks", "update", "c", "--name", "Renamed", "--priority", "0")
    assert updated.exit_code == 0, updated.output
    got = json.loads(cli("tasks", "get", "c", "--json").output)
    assert (got["name"], got["priority"]) == ("Renamed", 0)
    counted = cli("tasks", "count", "--format", "json")
    assert json.loads(counted.output)["pending"] == 2
    listed = cli("tasks", "list", "--all-tasks", "--format", "json")
    assert sorted(t["id"] for t in json.loads(listed.output)) == ["c", "r"]
    children = cli("tasks", "children", "--parent-id", "r", "--json")
    assert [t["id"] for t in json.loads(children.output)] == ["c"]


def test_import_legacy_converts_the_database_in_place_then_runs(
    cli: Callable[..., Any], sandbox: Any
) -> None:
    sandbox.db_path.parent.mkdir(parents=True, exist_ok=True)
    write_legacy_database(
        sandbox.db_url,
        [
            legacy_row("r", "Root", schemas=AGG, has_children=True, dependencies=["a"]),
            legacy_row(
                "a",
                "A",
                parent_id="r",
                schemas=AGG,
                status="completed",
                result={"rows": 3},
                progress=1,
            ),
        ],
    )
    refused = cli("tasks", "list")
    assert refused.exit_code == 2
    assert "apflow db import-legacy" in refused.output

    checked = cli("db", "import-legacy", "--dry-run", "--json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.output)["dry_run"] is True
    assert cli("tasks", "list").exit_code == 2  # the dry run changed nothing

    done = cli("db", "import-legacy")
    assert done.exit_code == 0, done.output
    assert "Imported 2 task(s) in 1 tree(s)" in done.output
    assert "The old rows are kept in the table apflow_tasks_v09." in done.output
    assert "Run a tree with: apflow tasks execute r" in done.output

    ran = cli("tasks", "execute", "r", "--json")
    assert ran.exit_code == 0, ran.output
    tasks = {t["id"]: t for t in json.loads(ran.output)["tasks"]}
    assert tasks["r"]["status"] == "completed"
    assert tasks["r"]["result"]["results"] == {"a": {"rows": 3}}

    again = cli("db", "import-legacy")
    assert again.exit_code == 2
    assert "already has this version's schema" in again.output
    conn = duckdb.connect(str(sandbox.db_path), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM apflow_tasks_v09").fetchone() == (2,)
    finally:
        conn.close()


def test_import_legacy_from_another_file(cli: Callable[..., Any], tmp_path: Any) -> None:
    old = f"duckdb:///{tmp_path / 'old.duckdb'}"
    write_legacy_database(old, [legacy_row("x", "X", schemas=AGG, status="in_progress")])
    out = cli("db", "import-legacy", old, "--json")
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["tasks"], report["backup_table"], report["root_ids"]) == (1, None, ["x"])
    assert "pending again" in report["notes"][0]
    got = json.loads(cli("tasks", "get", "x", "--json").output)
    assert got["status"] == "pending"
